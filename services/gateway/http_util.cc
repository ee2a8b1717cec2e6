#include "http_util.h"

#include <algorithm>
#include <cctype>
#include <ctime>

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_json(Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(dump_json(j), "application/json");
}

void send_error(Response& res, const ApiError& e) { send_json(res, e.http, e.body()); }

// A call's failure as the HTTP error naming the service.
void send_failure(Response& res, const Status& st, Service s) { send_error(res, from_status(st, service_name(s))); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string param(const Request& req, const char* name, const std::string& def) {
  return req.has_param(name) ? req.get_param_value(name) : def;
}

uint64_t uint_param(const Request& req, const char* name, uint64_t def, uint64_t lo, uint64_t hi,
                    std::optional<ApiError>& err) {
  if (!req.has_param(name)) return def;
  auto s = req.get_param_value(name);
  uint64_t v = 0;
  bool ok = !s.empty() && s.size() <= 19 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); });
  if (ok) v = std::stoull(s);
  if (!ok || v < lo || v > hi) {
    if (!err) {
      err = bad_request(name, "query parameter '" + std::string(name) + "' must be an integer from " +
                                  std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + s + "'");
    }
    return def;
  }
  return v;
}

int64_t int_param(const Request& req, const char* name, int64_t def, std::optional<ApiError>& err) {
  if (!req.has_param(name)) return def;
  auto s = req.get_param_value(name);
  try {
    size_t used = 0;
    int64_t v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  if (!err) err = bad_request(name, "query parameter '" + std::string(name) + "' must be an integer, not '" + s + "'");
  return def;
}

// "1700000000" (Unix seconds) or "2026-01-31" (UTC midnight) -> ns.
int64_t time_param(const Request& req, const char* name, std::optional<ApiError>& err) {
  if (!req.has_param(name)) return 0;
  auto s = req.get_param_value(name);
  // Seconds up to 2262-04-11, the last whole second int64 nanoseconds hold.
  constexpr int64_t kMaxSeconds = INT64_MAX / 1'000'000'000LL;
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); }) && s.size() <= 12 &&
      std::stoll(s) <= kMaxSeconds) {
    return std::stoll(s) * 1'000'000'000LL;
  }
  std::tm tm{};
  if (s.size() == 10 && strptime(s.c_str(), "%Y-%m-%d", &tm) != nullptr) {
    return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000LL;
  }
  if (!err) {
    err = bad_request(name, "query parameter '" + std::string(name) +
                                "' must be Unix seconds or a date YYYY-MM-DD, not '" + s + "'");
  }
  return 0;
}

std::string current_month() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m", &tm);
  return buf;
}

bool valid_month(const std::string& m) {
  return m.size() == 7 && std::isdigit(m[0]) && std::isdigit(m[1]) && std::isdigit(m[2]) && std::isdigit(m[3]) &&
         m[4] == '-' && std::isdigit(m[5]) && std::isdigit(m[6]) && (m[5] == '0' || (m[5] == '1' && m[6] <= '2')) &&
         !(m[5] == '0' && m[6] == '0');
}

bool valid_user(const std::string& u) {
  return !u.empty() && u.size() <= 64 && std::all_of(u.begin(), u.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '@';
  });
}

Result<rpc::Reply> query_jobs(Backends& b, const std::vector<fb::JobState>& states, const std::string& user,
                              const std::string& account, const std::string& experiment, uint64_t array_job_id,
                              uint32_t limit) {
  return b.call(Service::kScheduler, fb::RequestBody::QueryJobs, [&](flatbuffers::FlatBufferBuilder& fbb) {
    auto st = fbb.CreateVector(states);
    auto u = fbb.CreateString(user);
    auto a = fbb.CreateString(account);
    auto e = fbb.CreateString(experiment);
    fb::QueryJobsBuilder q(fbb);
    q.add_states(st);
    q.add_user(u);
    q.add_account(a);
    q.add_experiment(e);
    q.add_array_job_id(array_job_id);
    q.add_limit(limit);
    return q.Finish().Union();
  });
}

Result<rpc::Reply> get_job(Backends& b, uint64_t id) {
  return b.call(Service::kScheduler, fb::RequestBody::GetJob,
                [&](flatbuffers::FlatBufferBuilder& fbb) { return fb::CreateGetJob(fbb, id).Union(); });
}

Result<Pages> list_nodes(Backends& b, bool fresh) {
  Pages pages;
  std::string after;
  for (;;) {  // every page; the broker cuts them under a byte budget
    auto build = [&](flatbuffers::FlatBufferBuilder& fbb) {
      return fb::CreateListNodesDirect(fbb, after.empty() ? nullptr : after.c_str()).Union();
    };
    auto r = fresh ? b.call_fresh(Service::kBroker, fb::RequestBody::ListNodes, build)
                   : b.call(Service::kBroker, fb::RequestBody::ListNodes, build);
    if (!r) return r.status();
    const auto* list = r->body<fb::NodeList>();
    bool more = list && list->truncated() && list->next_after_name() && list->next_after_name()->str() > after;
    if (more) after = list->next_after_name()->str();
    pages.push_back(std::move(r).value());
    if (!more) return pages;
  }
}

Result<Pages> query_usage(Backends& b, const std::string& account, const std::string& user, uint64_t job,
                          int64_t since, int64_t until, const std::string& group_by, bool fresh) {
  Pages pages;
  std::string after;
  for (;;) {  // every page; billing cuts them under a byte budget
    auto build = [&](flatbuffers::FlatBufferBuilder& fbb) {
      return fb::CreateQueryUsageDirect(fbb, account.c_str(), user.c_str(), job, since, until, group_by.c_str(),
                                        after.empty() ? nullptr : after.c_str())
          .Union();
    };
    auto r = fresh ? b.call_fresh(Service::kBilling, fb::RequestBody::QueryUsage, build)
                   : b.call(Service::kBilling, fb::RequestBody::QueryUsage, build);
    if (!r) return r.status();
    const auto* u = r->body<fb::UsageReport>();
    bool more = u && u->truncated() && u->next_after() && u->next_after()->size() > 0 && u->next_after()->str() != after;
    if (more) after = u->next_after()->str();
    pages.push_back(std::move(r).value());
    if (!more) return pages;
  }
}

uint64_t id_of(const Request& req) { return std::stoull(req.matches[1].str()); }

std::string sse_message(uint64_t id, const std::string& event, const std::string& data) {
  std::string m;
  if (id) m += "id: " + std::to_string(id) + "\n";
  m += "event: " + event + "\ndata: " + data + "\n\n";
  return m;
}

void sse_headers(Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
}

std::optional<Json> json_body(const Request& req, bool empty_ok, std::optional<ApiError>& err) {
  if (req.body.empty() && empty_ok) return Json::object();
  Json body;
  try {
    body = Json::parse(req.body);
  } catch (const Json::parse_error& e) {
    err = bad_request("", std::string("the body is not valid JSON: ") + e.what());
    return std::nullopt;
  }
  if (!body.is_object()) {
    err = bad_request("", std::string("the body must be a JSON object, not ") + body.type_name());
    return std::nullopt;
  }
  return body;
}

}  // namespace trainyard::gateway
