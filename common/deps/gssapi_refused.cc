// The GSSAPI functions libzmq.a refers to, each refusing: Trainyard never
// enables ZeroMQ's GSSAPI mechanism (it authenticates with CURVE,
// common/security), so none of these is ever called. They exist so that
// linking libzmq statically does not load the Kerberos library and the five it
// pulls in into every process (see CMakeLists.txt here). Each answers
// GSS_S_FAILURE, as a GSSAPI library with no usable mechanism would; the
// declarations they must match are gssapi.h's.
#include <gssapi/gssapi.h>

namespace {
OM_uint32 refuse(OM_uint32* minor) {
  if (minor) *minor = 0;
  return GSS_S_FAILURE;
}
}  // namespace

gss_OID GSS_C_NT_HOSTBASED_SERVICE = GSS_C_NO_OID;
gss_OID GSS_C_NT_USER_NAME = GSS_C_NO_OID;

OM_uint32 gss_acquire_cred(OM_uint32* minor, gss_name_t, OM_uint32, gss_OID_set, gss_cred_usage_t, gss_cred_id_t*,
                           gss_OID_set*, OM_uint32*) {
  return refuse(minor);
}
OM_uint32 gss_release_cred(OM_uint32* minor, gss_cred_id_t*) { return refuse(minor); }
OM_uint32 gss_init_sec_context(OM_uint32* minor, gss_cred_id_t, gss_ctx_id_t*, gss_name_t, gss_OID, OM_uint32,
                               OM_uint32, gss_channel_bindings_t, gss_buffer_t, gss_OID*, gss_buffer_t, OM_uint32*,
                               OM_uint32*) {
  return refuse(minor);
}
OM_uint32 gss_accept_sec_context(OM_uint32* minor, gss_ctx_id_t*, gss_cred_id_t, gss_buffer_t, gss_channel_bindings_t,
                                 gss_name_t*, gss_OID*, gss_buffer_t, OM_uint32*, OM_uint32*, gss_cred_id_t*) {
  return refuse(minor);
}
OM_uint32 gss_delete_sec_context(OM_uint32* minor, gss_ctx_id_t*, gss_buffer_t) { return refuse(minor); }
OM_uint32 gss_wrap(OM_uint32* minor, gss_ctx_id_t, int, gss_qop_t, gss_buffer_t, int*, gss_buffer_t) {
  return refuse(minor);
}
OM_uint32 gss_unwrap(OM_uint32* minor, gss_ctx_id_t, gss_buffer_t, gss_buffer_t, int*, gss_qop_t*) {
  return refuse(minor);
}
OM_uint32 gss_display_name(OM_uint32* minor, gss_name_t, gss_buffer_t, gss_OID*) { return refuse(minor); }
OM_uint32 gss_import_name(OM_uint32* minor, gss_buffer_t, gss_OID, gss_name_t*) { return refuse(minor); }
OM_uint32 gss_release_name(OM_uint32* minor, gss_name_t*) { return refuse(minor); }
OM_uint32 gss_release_buffer(OM_uint32* minor, gss_buffer_t) { return refuse(minor); }
