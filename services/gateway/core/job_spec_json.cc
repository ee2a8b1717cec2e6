#include "core/job_spec_json.h"

#include "trainyard/job_spec_json.h"

namespace trainyard::gateway {

std::optional<ApiError> parse_job_spec(const nlohmann::json& j, const std::string& principal, bool may_act_for_others,
                                       fb::JobSpecT* out) {
  if (!j.is_object()) return bad_request("", "the request body must be a JSON object (a job spec)");
  std::string field;
  auto spec = client::parse_spec_object(j, &field);
  if (!spec) return bad_request(field, spec.status().message());
  *out = std::move(*spec);
  if (out->command.empty()) return bad_request("command", "field 'command' is required: the argv to run");
  if (out->user.empty()) {
    out->user = principal;
  } else if (out->user != principal && !may_act_for_others) {
    return ApiError{403, "user '" + principal + "' may not submit jobs as '" + out->user + "'", "user", "",
                    "PermissionDenied"};
  }
  return std::nullopt;
}

}  // namespace trainyard::gateway
