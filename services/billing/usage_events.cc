// What billing does with the bus: usage ticks are charged into the ledger
// (cloud ticks at the node's price, cloud_events.cc), job.submitted names a
// job's account, and what the ledger changed is settled into the batch with
// the budget crossings it causes, published as account.*.
#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "calendar/calendar.h"
#include "money/money.h"
#include "security/site.h"
#include "shell.h"
#include "storage/keys.h"

namespace trainyard::billing {

using storage::Key;
using storage::KeyReader;

void BillingShell::on_event(const bus::Event& e, storage::Batch& batch) {
  switch (e.type()) {
    case fb::Payload::AuditRecord:
      keep_audit(e, batch);
      return;
    case fb::Payload::UsageTick:
      on_usage_tick(e, batch);
      return;
    case fb::Payload::JobSubmitted:
      on_job_submitted(e, batch);
      return;
    case fb::Payload::CloudLease:
      on_cloud_lease(e, batch);
      return;
    default:
      return;  // other job.* events carry nothing billing needs
  }
}

void BillingShell::on_usage_tick(const bus::Event& e, storage::Batch& batch) {
  auto* t = e.as<fb::UsageTick>();
  if (charge_cloud_usage(*t, batch)) return;
  Usage u;
  auto view = [](const flatbuffers::String* s) { return s ? s->string_view() : std::string_view(); };
  u.account = view(t->account());
  u.user = view(t->user());
  u.partition = view(t->partition());
  u.gpu_type = view(t->gpu_type());
  u.job = t->job_id();
  u.gpus = t->gpus();
  u.cpus = t->cpus();
  u.memory_mb = t->memory_mb();
  u.start_ns = t->start_ns();
  u.end_ns = t->end_ns();
  // Under CURVE the forwarder let only agent:X publish on usage.@X;
  // X may charge for its own node only.
  if (security::Site::current() &&
      !security::instance_owns_node(e.stream().substr(e.stream().rfind('@') + 1), view(t->node()))) {
    ++stats_.refused;
    spdlog::warn("refused usage.tick {} seq {}: it charges node {} from another node's stream", e.stream(),
                 e.seq(), view(t->node()));
    return;
  }
  auto r = ledger_.charge(u, card_);
  if (!r) {
    // Never retried: the same event would be refused again. Counted and logged.
    ++stats_.refused;
    int64_t now = monotonic_ms();
    if (now - last_refusal_log_ms_ > 1000) {
      spdlog::warn("refused usage.tick {} seq {}: {} ({} refused so far)", e.stream(), e.seq(),
                   r.status().message(), stats_.refused);
      last_refusal_log_ms_ = now;
    }
    return;
  }
  ++stats_.ticks;
  if (r->unpriced && ++stats_.unpriced == 1) {
    spdlog::warn("usage of GPU type '{}' (job {}) is charged 0: the rate card prices neither it nor 'default'",
                 u.gpu_type, u.job);
  }
}

void BillingShell::on_job_submitted(const bus::Event& e, storage::Batch& batch) {
  auto* j = e.as<fb::JobSubmitted>();
  if (!j->spec() || !j->spec()->account()) return;
  auto account = j->spec()->account()->string_view();
  if (account.find('\0') != std::string_view::npos) return;
  batch.put(jobs_cf_, Key().u64(j->job_id()).str(account).bytes(), "");
}

void BillingShell::settle(storage::Batch& batch) {
  auto changes = ledger_.drain();
  for (auto& [k, v] : changes.lines) batch.put(lines_cf_, k, v);
  for (auto& [job, account] : changes.new_jobs) batch.put(jobs_cf_, Key().u64(job).str(account).bytes(), "");
  if (changes.spends.empty()) return;
  uint32_t now_month = month_of(clock_.now_ns());
  for (auto& [k, micros] : changes.spends) {
    batch.put(spends_cf_, k, storage::encode_u64(static_cast<uint64_t>(micros)));
    KeyReader r(k);
    std::string account(r.str());
    uint32_t month = r.u32();
    // Late usage of a past month no longer moves a budget.
    if (month == now_month) check_budget(account, month, batch);
  }
}

void BillingShell::check_budget(const std::string& account, uint32_t month, storage::Batch& batch) {
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;  // no budget, never blocked
  AccountState before = it->second;
  int64_t spent = ledger_.spent(account, month);
  auto events = evaluate_budget(account, it->second, month, spent);
  for (auto& e : events) publish(e, batch);
  tell_budget(account, it->second, month, spent, batch);
  if (it->second.encode() != before.encode()) batch.put(accounts_cf_, account, it->second.encode());
}

// account.budget: on a new limit or month, and whenever another 1 % of the
// limit is spent (the resource broker's estimate of what is left to rent
// with is at most that stale).
void BillingShell::tell_budget(const std::string& account, const AccountState& st, uint32_t month, int64_t spent,
                               storage::Batch& batch) {
  int64_t limit = st.budget ? st.budget->monthly_micros : 0;
  auto& told = budget_told_[account];
  bool fresh = told.month != month || told.limit != limit;
  if (!fresh && std::llabs(spent - told.spent) < std::max<int64_t>(1, limit / 100)) return;
  told = {month, limit, spent};
  auto& b = publisher_->builder();
  auto ev = fb::CreateAccountBudgetDirect(b, account.c_str(), format_month(month).c_str(), spent, limit,
                                          st.budget && st.budget->hard);
  publisher_->append(batch, "account.budget", fb::Payload::AccountBudget, ev.Union());
}

void BillingShell::publish(const AccountEvent& e, storage::Batch& batch) {
  auto& b = publisher_->builder();
  auto account = b.CreateString(e.account);
  auto month = b.CreateString(format_month(e.month));
  if (e.kind == AccountEvent::Kind::kWarning) {
    auto w = fb::CreateAccountWarning(b, account, month, e.spent_micros, e.limit_micros);
    publisher_->append(batch, "account.warning", fb::Payload::AccountWarning, w.Union());
    spdlog::info("account {}: spent {} of {} {} in {} (soft limit)", e.account, format_micros(e.spent_micros),
                 format_micros(e.limit_micros), options_.currency, format_month(e.month));
  } else {
    auto bl = fb::CreateAccountBlocked(b, account, month, e.spent_micros, e.limit_micros, e.blocked, e.stop_running);
    publisher_->append(batch, "account.blocked", fb::Payload::AccountBlocked, bl.Union());
    spdlog::info("account {} {}: spent {} of {} {} in {}", e.account, e.blocked ? "blocked" : "unblocked",
                 format_micros(e.spent_micros), format_micros(e.limit_micros), options_.currency,
                 format_month(e.month));
  }
  ++stats_.events_published;
}

void BillingShell::snapshot(std::string_view prefix, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) {
  if (prefix == security::kDirectoryPrefix) {
    auto view = security::to_view(directory_->durable());
    emit(security::kDirectoryTopic, fb::Payload::DirectoryView, fb::DirectoryView::Pack(b, &view).Union());
    return;
  }
  if (prefix != "account.") return;
  // The state a late subscriber needs: which accounts are blocked now.
  uint32_t now_month = month_of(clock_.now_ns());
  for (auto& [name, st] : accounts_) {
    int64_t limit = st.budget ? st.budget->monthly_micros : 0;
    uint32_t month = st.blocked ? st.blocked_month : now_month;
    auto a = b.CreateString(name);
    auto m = b.CreateString(format_month(month));
    auto bl = fb::CreateAccountBlocked(b, a, m, ledger_.spent(name, month), limit, st.blocked,
                                       st.budget && st.budget->stop_running);
    emit("account.blocked", fb::Payload::AccountBlocked, bl.Union());
    auto a2 = b.CreateString(name);
    auto m2 = b.CreateString(format_month(now_month));
    emit("account.budget", fb::Payload::AccountBudget,
         fb::CreateAccountBudget(b, a2, m2, ledger_.spent(name, now_month), limit, st.budget && st.budget->hard)
             .Union());
  }
}

}  // namespace trainyard::billing
