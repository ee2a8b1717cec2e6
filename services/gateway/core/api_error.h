// The gateway's error contract: every failed request answers an HTTP status
// and a JSON body {"error": "...", "field": ..., "service": ..., "code": ...}
// that says what was wrong and, where it is known, which field or which
// service behind the gateway caused it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace trainyard::gateway {

struct ApiError {
  int http = 500;
  std::string message;
  std::string field;    // the request field at fault; empty when none
  std::string service;  // the service behind the gateway at fault; empty when none
  std::string code;     // the Trainyard ErrorCode name ("NotFound"), when one

  nlohmann::json body() const;
};

ApiError bad_request(std::string field, std::string message);

// The HTTP status for a Trainyard error code: InvalidArgument 400,
// PermissionDenied 403, NotFound 404, AlreadyExists/Conflict/FailedPrecondition
// 409, ResourceExhausted 429, Unimplemented 501, Unavailable 503,
// DeadlineExceeded 504, anything else 500.
int http_status(ErrorCode code);

// The error for a failed call to `service`; Unavailable becomes a 503 that
// names the service.
ApiError from_status(const Status& status, const std::string& service);

}  // namespace trainyard::gateway
