// Routes of usage and money: usage reports, accounts with this month's
// spend and budgets, invoices.
#include "api.h"

#include <ctime>
#include <map>
#include <set>

#include <httplib.h>

#include "core/codec.h"
#include "http_util.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

void Api::usage(const Request& req, Response& res) {
  std::optional<ApiError> err;
  std::string group_by = param(req, "group_by", "account");
  static const std::set<std::string> kGroups{"account", "user", "job", "day", "resource"};
  if (!kGroups.count(group_by)) {
    return send_error(res, bad_request("group_by", "query parameter 'group_by' must be account, user, job, day or resource"));
  }
  auto job = uint_param(req, "job", 0, 0, UINT64_MAX, err);
  int64_t since = time_param(req, "since", err);
  int64_t until = time_param(req, "until", err);
  if (err) return send_error(res, *err);
  auto r = query_usage(backends_, param(req, "account"), param(req, "user"), job, since, until, group_by);
  if (!r) return send_failure(res, r.status(), Service::kBilling);
  Json out = to_json(bodies<fb::UsageReport>(*r));
  out["group_by"] = group_by;
  send_json(res, 200, out);
}

void Api::accounts(const Request&, Response& res) {
  auto all = query_usage(backends_, "", "", 0, 0, 0, "account");
  if (!all) return send_failure(res, all.status(), Service::kBilling);
  std::string month = current_month();
  std::tm tm{};
  strptime((month + "-01").c_str(), "%Y-%m-%d", &tm);
  int64_t month_start = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000LL;
  auto this_month = query_usage(backends_, "", "", 0, month_start, 0, "account");
  if (!this_month) return send_failure(res, this_month.status(), Service::kBilling);
  std::map<std::string, int64_t> month_cost;
  for (const auto* u : bodies<fb::UsageReport>(*this_month)) {
    if (!u->rows()) continue;
    for (const auto* row : *u->rows()) month_cost[row->key() ? row->key()->str() : ""] = row->cost_micros();
  }
  // Budgets as billing announced them (account.warning / account.blocked)
  // on the bus since the gateway started.
  std::map<std::string, Json> budgets;
  for (const auto& e : hub_.recent(4096, {"account"})) {
    auto d = Json::parse(e.json);
    std::string a = d.value("account", "");
    if (d.value("month", "") != month) continue;
    auto& b = budgets[a];
    b["limit_micros"] = d["limit_micros"];
    b["spent_micros"] = d["spent_micros"];
    if (e.topic == "account.warning") b["warning"] = true;
    if (d.contains("blocked")) b["blocked"] = d["blocked"];
  }
  Json list = Json::array();
  std::string currency;
  for (const auto* report : bodies<fb::UsageReport>(*all)) {
    if (report->currency()) currency = report->currency()->str();
    if (!report->rows()) continue;
    for (const auto* row : *report->rows()) {
      std::string a = row->key() ? row->key()->str() : "";
      Json j{{"account", a},
             {"gpu_hours", static_cast<double>(row->gpu_ms()) / 3.6e6},
             {"cost_micros", row->cost_micros()},
             {"cost", micros_to_amount(row->cost_micros())},
             {"month", month},
             {"month_cost_micros", month_cost[a]},
             {"month_cost", micros_to_amount(month_cost[a])}};
      auto b = budgets.find(a);
      j["budget"] = b == budgets.end() ? Json(nullptr) : b->second;
      list.push_back(j);
    }
  }
  send_json(res, 200, {{"currency", currency}, {"month", month}, {"accounts", list}});
}

void Api::invoice(const Request& req, Response& res, const std::string& account) {
  if (account.empty()) return send_error(res, bad_request("account", "which account? /api/v1/accounts/NAME/invoice"));
  std::string month = param(req, "month", current_month());
  if (!valid_month(month)) {
    return send_error(res, bad_request("month", "query parameter 'month' must look like 2026-01, not '" + month + "'"));
  }
  auto r = backends_.call(Service::kBilling, fb::RequestBody::GetInvoice, [&](auto& fbb) {
    return fb::CreateGetInvoiceDirect(fbb, account.c_str(), month.c_str()).Union();
  });
  if (!r) return send_failure(res, r.status(), Service::kBilling);
  send_json(res, 200, to_json(expect<fb::Invoice>(*r)));
}

}  // namespace trainyard::gateway
