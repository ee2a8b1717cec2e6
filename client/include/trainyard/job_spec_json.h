// The job-spec parser of spec files (job_spec.h: parse_spec_file), for a
// JSON object already parsed: the REST API's POST /api/v1/jobs body
// (services/gateway) reads specs with it, so a spec means the same, and is
// refused for the same reason, through `ty submit --file spec.json` and
// through the gateway. Apart from this header the client library does not
// expose nlohmann::json.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "trainyard/fb/jobs_generated.h"
#include "util/status.h"

namespace trainyard::client {

// The fields of fb::JobSpec by name, with the rules of parse_spec_file
// ("command" as argv or a shell string, "gpus" for gpus_per_node,
// "time_limit" and "memory" in Slurm's form, dependencies as "afterok:12" or
// {kind, job_id}, null as absent). Errors say "field 'F' ..." with no file
// or line; `bad_field`, when given, receives F ("env.A" for a key of a
// table; "" when `object` is not an object). `object` is read in place, never
// copied, however deep it is nested.
Result<fb::JobSpecT> parse_spec_object(const nlohmann::json& object, std::string* bad_field = nullptr);

}  // namespace trainyard::client
