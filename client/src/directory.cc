// The Client's directory and audit requests, served by billing (which owns
// the directory): GetDirectory, EditDirectory and QueryAudit.
#include "rpc/client.h"
#include "trainyard/client.h"
#include "unpack.h"

namespace trainyard::client {

Result<fb::DirectoryViewT> Client::directory() {
  auto& p = peer("billing");
  auto r = p.call(fb::RequestBody::GetDirectory,
                  [](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetDirectory(b).Union(); });
  return unpack<fb::DirectoryView>(r, p.peer());
}

Result<fb::DirectoryViewT> Client::edit_directory(const std::vector<fb::DirectoryOpT>& ops, bool replace) {
  auto& p = peer("billing");
  auto r = p.call(fb::RequestBody::EditDirectory, [&](flatbuffers::FlatBufferBuilder& b) {
    std::vector<flatbuffers::Offset<fb::DirectoryOp>> built;
    built.reserve(ops.size());
    for (auto& o : ops) built.push_back(fb::CreateDirectoryOp(b, &o));
    return fb::CreateEditDirectoryDirect(b, &built, replace).Union();
  });
  return unpack<fb::DirectoryView>(r, p.peer());
}

Result<fb::AuditListT> Client::audit(const AuditQuery& q) {
  auto& p = peer("billing");
  auto r = p.call(fb::RequestBody::QueryAudit, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateQueryAuditDirect(b, q.since_ns, q.until_ns, q.principal.c_str(), q.refused_only, q.limit,
                                      q.before.empty() ? nullptr : q.before.c_str())
        .Union();
  });
  return unpack<fb::AuditList>(r, p.peer());
}

}  // namespace trainyard::client
