#include "core/api_error.h"

namespace trainyard::gateway {

nlohmann::json ApiError::body() const {
  nlohmann::json j{{"error", message}};
  j["field"] = field.empty() ? nlohmann::json(nullptr) : nlohmann::json(field);
  if (!service.empty()) j["service"] = service;
  if (!code.empty()) j["code"] = code;
  return j;
}

ApiError bad_request(std::string field, std::string message) {
  return ApiError{400, std::move(message), std::move(field), "", "InvalidArgument"};
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::Ok: return 200;
    case ErrorCode::InvalidArgument: return 400;
    case ErrorCode::PermissionDenied: return 403;
    case ErrorCode::NotFound: return 404;
    case ErrorCode::AlreadyExists:
    case ErrorCode::Conflict:
    case ErrorCode::FailedPrecondition: return 409;
    case ErrorCode::ResourceExhausted: return 429;
    case ErrorCode::Unimplemented: return 501;
    case ErrorCode::Unavailable: return 503;
    case ErrorCode::DeadlineExceeded: return 504;
    case ErrorCode::Internal: return 500;
  }
  return 500;
}

ApiError from_status(const Status& status, const std::string& service) {
  ApiError e;
  e.http = http_status(status.code());
  e.code = fb::EnumNameErrorCode(status.code());
  e.service = service;
  if (status.code() == ErrorCode::Unavailable) {
    e.message = service + " is unavailable: " + status.message();
  } else {
    e.message = status.message();
  }
  return e;
}

}  // namespace trainyard::gateway
