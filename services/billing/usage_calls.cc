// The usage side of billing's ROUTER: QueryUsage and GetInvoice (read from
// the ledger's lines, limited to what the caller may read), EstimateCost,
// SetBudget and ReloadRates.
#include <limits>

#include "calendar/calendar.h"
#include "core/estimate.h"
#include "core/report.h"
#include "money/money.h"
#include "shell.h"
#include "storage/keys.h"
#include "util/page.h"
#include "wire/fb_str.h"

namespace trainyard::billing {

using storage::Key;
using storage::KeyReader;

namespace {

// Whose lines a caller may read: every line (admins, services), every line
// of `account` (its coordinators), or their own (its members; a caller
// naming no account reads their own lines only). Sets the filter's user.
Status limit_to_reader(const security::Caller& c, const std::string& account, UsageFilter& f) {
  if (!c.enforced() || c.admin()) return Status::success();
  if (!account.empty() && c.coordinates(account)) return Status::success();
  if (!account.empty() && !c.member_of(account)) {
    return c.refuse("account membership", "read the usage of account " + account);
  }
  if (!f.user.empty() && f.user != c.name()) {
    return c.refuse("own usage", "read the usage of user " + f.user + " (coordinators of the account may)");
  }
  f.user = std::string(c.name());
  return Status::success();
}

}  // namespace

Status BillingShell::scan_lines(const UsageFilter& f,
                                const std::function<void(const LineKey&, const Line&)>& fn) const {
  auto visit = [&](std::string_view k, std::string_view v) {
    auto key = LineKey::decode(k);
    auto line = Line::decode(v);
    if (key && line && f.matches(*key)) fn(*key, *line);
    return true;
  };
  auto scan_account = [&](const std::string& account) {
    std::string lo = Key().str(account).u32(f.first_day).bytes();
    std::string hi = f.end_day == std::numeric_limits<uint32_t>::max() ? storage::prefix_end(Key().str(account).bytes())
                                                                       : Key().str(account).u32(f.end_day).bytes();
    return store_.scan(lines_cf_, lo, hi, visit);
  };
  if (!f.account.empty()) return scan_account(f.account);
  if (f.job == 0) return store_.scan(lines_cf_, "", "", visit);
  std::vector<std::string> accounts;
  auto found = store_.scan_prefix(jobs_cf_, Key().u64(f.job).bytes(), [&](std::string_view k, std::string_view) {
    KeyReader r(k);
    r.u64();
    accounts.emplace_back(r.str());
    return true;
  });
  if (!found) return found;
  for (auto& a : accounts) {
    if (auto s = scan_account(a); !s) return s;
  }
  return Status::success();
}

void BillingShell::on_query_usage(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_QueryUsage();
  auto by = parse_group_by(q->group_by() ? q->group_by()->string_view() : "");
  if (!by) return r.error(by.status());
  if (q->until_ns() > 0 && q->until_ns() <= q->since_ns()) {
    return r.error(Status::invalid("QueryUsage.until_ns is not after since_ns: give a period [since, until)"));
  }
  UsageFilter f = UsageFilter::from_period(q->since_ns(), q->until_ns());
  f.account = str(q->account());
  f.user = str(q->user());
  f.job = q->job_id();
  if (auto s = limit_to_reader(caller(r), f.account, f); !s) return r.error(s);
  UsageReport report(*by);
  if (auto s = scan_lines(f, [&](const LineKey& k, const Line& l) { report.add(k, l); }); !s) return r.error(s);
  auto all = report.rows_after(str(q->after()));
  if (!all) return r.error(all.status());
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::UsageRow>> rows;
  PageBudget page(q->page_bytes());
  std::string next;
  for (auto& row : *all) {
    if (!page.admit(row.key.size() + 40)) break;
    rows.push_back(fb::CreateUsageRowDirect(b, row.key.c_str(), to_ms(row.gpu_ns), to_ms(row.cpu_ns),
                                            to_ms(row.memory_mb_ns), row.cost_micros));
    next = UsageReport::cursor(row);
  }
  auto body = fb::CreateUsageReportDirect(b, options_.currency.c_str(), &rows,
                                          page.truncated() ? next.c_str() : nullptr, page.truncated());
  r.ok(fb::ReplyBody::UsageReport, body.Union());
}

void BillingShell::on_invoice(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_GetInvoice();
  std::string account = str(q->account());
  if (account.empty()) return r.error(Status::invalid("GetInvoice.account is empty: name the account to invoice"));
  auto month = parse_month(q->month() ? q->month()->string_view() : "");
  if (!month) {
    return r.error(Status::invalid("GetInvoice.month '" + str(q->month()) + "' is not a month such as 2026-11"));
  }
  UsageFilter f;
  f.account = account;
  if (auto s = limit_to_reader(caller(r), account, f); !s) return r.error(s);
  f.first_day = month_first_day(*month);
  f.end_day = month_end_day(*month);
  InvoiceBuilder inv;
  if (auto s = scan_lines(f, [&](const LineKey& k, const Line& l) { inv.add(k, l); }); !s) return r.error(s);
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::InvoiceLine>> lines;
  for (auto& l : inv.lines()) {
    lines.push_back(fb::CreateInvoiceLineDirect(b, l.user.c_str(), std::string(resource_name(l.resource)).c_str(),
                                                l.gpu_type.c_str(), to_ms(l.quantity_ns), l.cost_micros));
  }
  auto body = fb::CreateInvoiceDirect(b, account.c_str(), format_month(*month).c_str(), options_.currency.c_str(),
                                      &lines, inv.total_micros());
  r.ok(fb::ReplyBody::Invoice, body.Union());
}

void BillingShell::on_estimate(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_EstimateCost();
  if (!q->spec()) return r.error(Status::invalid("EstimateCost.spec is missing: send the job spec to estimate"));
  auto* s = q->spec();
  JobShape job;
  job.gpu_type = str(s->gpu_type());
  job.partition = str(s->partition());
  job.gpus_per_node = s->gpus_per_node();
  job.cpus = s->cpus();
  job.memory_mb = s->memory_mb();
  job.nodes = s->nodes();
  job.time_limit_s = s->time_limit_s();
  auto cost = estimate_cost(job, card_, day_of(clock_.now_ns()));
  if (!cost) return r.error(cost.status());
  auto& b = r.builder();
  r.ok(fb::ReplyBody::Estimate, fb::CreateEstimateDirect(b, *cost, options_.currency.c_str()).Union());
}

void BillingShell::on_set_budget(const fb::Request& req, rpc::Responder& r) {
  if (auto c = caller(r); !c.admin()) return r.error(c.refuse("admins", "set budgets"));
  auto* q = req.body_as_SetBudget();
  std::string account = str(q->account());
  if (account.empty() || account.find('\0') != std::string::npos) {
    return r.error(Status::invalid("SetBudget.account is empty: name the account"));
  }
  if (q->monthly_micros() < 0) {
    return r.error(Status::invalid("SetBudget.monthly_micros is negative; give the monthly budget in micro-units "
                                   "(0 removes the budget)"));
  }
  if (q->soft_percent() > 1000) {
    return r.error(Status::invalid("SetBudget.soft_percent " + std::to_string(q->soft_percent()) +
                                   " is above 1000; give a percentage of the monthly budget (0: no warning)"));
  }
  auto& st = accounts_[account];
  if (q->monthly_micros() == 0) {
    st.budget.reset();
  } else {
    st.budget = Budget{q->monthly_micros(), q->soft_percent(), q->hard(), q->stop_running()};
  }
  runtime_.batch().put(accounts_cf_, account, st.encode());
  check_budget(account, month_of(clock_.now_ns()), runtime_.batch());
  r.audit("account " + account + " budget " + std::to_string(q->monthly_micros()) + " micros/month" +
          (q->hard() ? " (hard)" : ""));
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void BillingShell::on_reload(const fb::Request&, rpc::Responder& r) {
  if (auto c = caller(r); !c.admin()) return r.error(c.refuse("admins", "reload the rate card"));
  auto s = reload_rates();
  if (!s) return r.error(s);
  r.audit("rate card " + options_.rates);
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

}  // namespace trainyard::billing
