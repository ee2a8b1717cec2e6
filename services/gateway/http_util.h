// What every route of the gateway shares: JSON answers and errors, query
// parameters checked and named when wrong, the principal of a request, and
// the service calls more than one route makes.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "backends.h"
#include "core/api_error.h"

namespace trainyard::gateway {

using Json = nlohmann::json;

// Every answer is dumped with invalid UTF-8 replaced (log text, job and
// metric names come from users), never thrown on.
std::string dump_json(const Json& j);
void send_json(httplib::Response& res, int status, const Json& j);
void send_error(httplib::Response& res, const ApiError& e);
// A call's failure as the HTTP error naming the service.
void send_failure(httplib::Response& res, const Status& st, Service s);

std::vector<std::string> split(const std::string& s, char sep);
std::string param(const httplib::Request& req, const char* name, const std::string& def = "");
// An unsigned query parameter; sets `err` when present but not a number or
// out of [lo, hi].
uint64_t uint_param(const httplib::Request& req, const char* name, uint64_t def, uint64_t lo, uint64_t hi,
                    std::optional<ApiError>& err);
int64_t int_param(const httplib::Request& req, const char* name, int64_t def, std::optional<ApiError>& err);
// "1700000000" (Unix seconds) or "2026-01-31" (UTC midnight) -> ns.
int64_t time_param(const httplib::Request& req, const char* name, std::optional<ApiError>& err);
std::string current_month();
bool valid_month(const std::string& m);
bool valid_user(const std::string& u);
// The path parameter captured by the route's first group.
uint64_t id_of(const httplib::Request& req);

// A request body that must be a JSON object (or empty, when `empty_ok`):
// nullopt and `err` set (a 400 saying what was wrong) otherwise.
std::optional<Json> json_body(const httplib::Request& req, bool empty_ok, std::optional<ApiError>& err);

// Largest job list the gateway asks the scheduler for.
inline constexpr uint32_t kAllJobs = 1'000'000;

Result<rpc::Reply> query_jobs(Backends& b, const std::vector<fb::JobState>& states, const std::string& user,
                              const std::string& account, const std::string& experiment, uint64_t array_job_id,
                              uint32_t limit);
Result<rpc::Reply> get_job(Backends& b, uint64_t id);
// Every page of a paged list: the replies own the tables read from them.
using Pages = std::vector<rpc::Reply>;
Result<Pages> list_nodes(Backends& b, bool fresh = false);
Result<Pages> query_usage(Backends& b, const std::string& account, const std::string& user, uint64_t job,
                          int64_t since, int64_t until, const std::string& group_by, bool fresh = false);
// The bodies of every page (each checked as expect<T> does).
template <typename T>
std::vector<const T*> bodies(const Pages& pages);

// The body of an Ok reply; a service answering with another body type is a
// bug there, reported as a 500 naming it rather than a crash here.
template <typename T>
const T& expect(const rpc::Reply& r) {
  const T* b = r.body<T>();
  if (!b) {
    throw std::runtime_error(std::string("a service answered with an unexpected reply (") +
                             fb::EnumNameReplyBody(r.get().body_type()) + ")");
  }
  return *b;
}

// SSE framing.
std::string sse_message(uint64_t id, const std::string& event, const std::string& data);
void sse_headers(httplib::Response& res);

template <typename T>
std::vector<const T*> bodies(const Pages& pages) {
  std::vector<const T*> out;
  out.reserve(pages.size());
  for (const auto& p : pages) out.push_back(&expect<T>(p));
  return out;
}

}  // namespace trainyard::gateway
