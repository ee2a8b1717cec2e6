// Reads a job spec submitted as JSON (POST /api/v1/jobs) into the schema's
// JobSpec with the client library's spec parser (trainyard/job_spec_json.h:
// the rules of `ty submit --file spec.json`), then applies who may submit
// as whom. Strict: an unknown field or a value of the wrong type is a 400
// naming the field, so a typo ("gpu": 2) never silently asks for no GPU.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/api_error.h"
#include "trainyard/fb/jobs_generated.h"

namespace trainyard::gateway {

// Fills `out` from `j` (an object). `principal` is the user the request comes
// from: the spec's user defaults to it, and a spec naming someone else is
// refused (403) unless `may_act_for_others`.
std::optional<ApiError> parse_job_spec(const nlohmann::json& j, const std::string& principal, bool may_act_for_others,
                                       fb::JobSpecT* out);

}  // namespace trainyard::gateway
