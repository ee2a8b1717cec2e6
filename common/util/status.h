// Expected failures as cheap values: Status (code + message) and Result<T>.
// Exceptions are kept for programming errors and start-up failures.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

#include "trainyard/fb/common_generated.h"

namespace trainyard {

using ErrorCode = fb::ErrorCode;

// The outcome of an operation that can fail for a reason a user must see.
// The message names what was wrong (the field, the peer, the file and line).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  // Success. (Named apart from the predicate ok(): with one name for both,
  // `if (s.ok())` once called the constructor and was always true.)
  static Status success() { return {}; }
  static Status invalid(std::string m) { return {ErrorCode::InvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {ErrorCode::NotFound, std::move(m)}; }
  static Status conflict(std::string m) { return {ErrorCode::Conflict, std::move(m)}; }
  static Status unavailable(std::string m) { return {ErrorCode::Unavailable, std::move(m)}; }
  static Status failed_precondition(std::string m) { return {ErrorCode::FailedPrecondition, std::move(m)}; }
  static Status internal(std::string m) { return {ErrorCode::Internal, std::move(m)}; }
  static Status permission_denied(std::string m) { return {ErrorCode::PermissionDenied, std::move(m)}; }
  static Status exhausted(std::string m) { return {ErrorCode::ResourceExhausted, std::move(m)}; }

  bool ok() const { return code_ == ErrorCode::Ok; }
  explicit operator bool() const { return ok(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: job 12 does not exist"
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::Ok;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

// For start-up code only, where a constructor cannot return a Result (a
// shell restoring its state): the value, or a std::runtime_error with the
// Status's message, which run_service reports as "cannot start" (exit 3).
template <typename T>
T value_or_throw(Result<T> r) {
  if (!r) throw std::runtime_error(r.status().message());
  return std::move(r).value();
}
inline void value_or_throw(const Status& s) {
  if (!s) throw std::runtime_error(s.message());
}

inline std::string Status::to_string() const {
  if (ok()) return "Ok";
  return std::string(fb::EnumNameErrorCode(code_)) + ": " + message_;
}

}  // namespace trainyard
