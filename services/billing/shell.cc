#include "shell.h"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "calendar/calendar.h"
#include "core/estimate.h"
#include "money/money.h"
#include "core/report.h"
#include "security/site.h"
#include "storage/keys.h"
#include "util/page.h"
#include "wire/fb_str.h"

namespace trainyard::billing {

using storage::Key;
using storage::KeyReader;

namespace {

constexpr const char* kVersion = "0.1.0";

// The rate card file (the core parses text; reading the disk is the shell's).
Result<RateCard> load_rate_card(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid("rate card " + path + " cannot be read; check billing.rates");
  std::ostringstream text;
  text << in.rdbuf();
  return RateCard::parse(text.str(), path);
}

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

Result<BillingOptions> BillingOptions::from_config(const Config& c) {
  BillingOptions o;
  try {
    o.endpoint = c.get_string("billing.endpoint", o.endpoint);
    o.data = c.get_string("billing.data", o.data);
    auto trust = security::trust_from_config(c);
    if (!trust) return trust.status();
    o.trust = std::move(trust).value();
    o.audit_keep_days = c.get_int("billing.audit_keep_days", o.audit_keep_days, 1, 36500);
    o.rates = c.get_string("billing.rates", "");
    o.currency = c.get_string("billing.currency", o.currency);
    o.instance = c.get_string("billing.instance", o.instance);
    o.check_ms = c.get_int("billing.check_ms", o.check_ms, 10, 86400000);
    o.cache_lines = static_cast<size_t>(c.get_int("billing.cache_lines", static_cast<int64_t>(o.cache_lines), 1000, INT64_MAX));
    o.fsync = c.get_bool("billing.fsync", false);
    std::string rule = c.get_string("billing.cloud_overhead", "trigger");
    if (rule != "trigger" && rule != "platform") {
      return Status::invalid("billing.cloud_overhead is '" + rule +
                             "': \"trigger\" (the account whose job rented the node) or \"platform\"");
    }
    o.cloud_overhead = rule == "trigger" ? OverheadRule::kTrigger : OverheadRule::kPlatform;
    o.cloud_platform_account = c.get_string("billing.cloud_platform_account", o.cloud_platform_account);
    if (o.cloud_platform_account.empty()) return Status::invalid("billing.cloud_platform_account is empty: name the account");
    o.bus_frontend = c.get_strings("bus.frontend", {"tcp://127.0.0.1:5550"});
    o.bus_backend = c.get_strings("bus.backend", {"tcp://127.0.0.1:5551"});
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  if (o.rates.empty()) {
    return Status::invalid("billing.rates is not set: point it at a rate card TOML file (see "
                           "services/billing/rates.example.toml)");
  }
  if (o.currency.empty()) return Status::invalid("billing.currency is empty: name the currency, e.g. \"EUR\"");
  if (o.check_ms <= 0) return Status::invalid("billing.check_ms must be positive");
  auto card = load_rate_card(o.rates);
  if (!card) return Status::invalid("rate card refused: " + card.status().message());
  if (!card->currency().empty() && card->currency() != o.currency) {
    return Status::invalid("rate card " + o.rates + " is in " + card->currency() + " but billing.currency is " +
                           o.currency + "; make them agree");
  }
  o.card = std::move(card).value();
  return o;
}

storage::Options BillingShell::store_options(const Options& o) {
  return service_store({"lines", "spends", "accounts", "jobs", "cloud", "audit", security::DirectoryFeed::kColumnFamily},
                       o.fsync ? storage::Durability::kFsync : storage::Durability::kWal);
}

BillingShell::BillingShell(const ServiceEnv& env, BillingOptions options)
    : options_(std::move(options)),
      clock_(env.clock),
      card_(std::move(options_.card)),
      store_(env.store),
      lines_cf_(store_.cf("lines")),
      spends_cf_(store_.cf("spends")),
      accounts_cf_(store_.cf("accounts")),
      jobs_cf_(store_.cf("jobs")),
      cloud_cf_(store_.cf("cloud")),
      audit_cf_(store_.cf("audit")),
      runtime_(env.runtime),
      ledger_([this](std::string_view k) { return store_.get(lines_cf_, k); },
              [this](std::string_view k) { return store_.get(spends_cf_, k); }),
      meter_(options_.cloud_overhead, options_.cloud_platform_account) {
  store_.scan(cloud_cf_, "", "", [&](std::string_view, std::string_view v) {
    if (auto n = CloudNode::decode(v)) meter_.restore(std::move(*n));
    return true;
  });
  store_.scan(accounts_cf_, "", "", [&](std::string_view k, std::string_view v) {
    if (auto st = AccountState::decode(v)) accounts_.emplace(std::string(k), *st);
    return true;
  });

  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.instance);
  server_ = std::make_unique<rpc::Server>(env.ctx, options_.endpoint, "billing");
  bus::PublisherOptions po;
  po.instance = options_.instance;
  po.bus_endpoints = options_.bus_frontend;
  publisher_ = std::make_unique<bus::Publisher>(env.ctx, store_, *server_, po, clock_);
  publisher_->set_snapshot(
      [this](std::string_view prefix, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) {
        snapshot(prefix, b, emit);
      });

  bus::SubscriberOptions so;
  so.name = "billing";
  so.bus_endpoints = options_.bus_backend;
  so.prefixes = {"usage.", "job.", "cloud.", std::string(security::kAuditPrefix)};
  subscriber_ = std::make_unique<bus::Subscriber>(
      env.ctx, store_, so, [this](const bus::Event& e, storage::Batch& batch) { on_event(e, batch); });

  server_->on(fb::RequestBody::Ping, [this](const fb::Request&, rpc::Responder& r) {
    auto& b = r.builder();
    r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(b, "billing", options_.instance.c_str(), kVersion).Union());
  });
  server_->on(fb::RequestBody::QueryUsage, [this](const fb::Request& q, rpc::Responder& r) { on_query_usage(q, r); });
  server_->on(fb::RequestBody::GetInvoice, [this](const fb::Request& q, rpc::Responder& r) { on_invoice(q, r); });
  server_->on(fb::RequestBody::EstimateCost, [this](const fb::Request& q, rpc::Responder& r) { on_estimate(q, r); });
  server_->on(fb::RequestBody::SetBudget, [this](const fb::Request& q, rpc::Responder& r) { on_set_budget(q, r); });
  server_->on(fb::RequestBody::ReloadRates, [this](const fb::Request& q, rpc::Responder& r) { on_reload(q, r); });
  server_->on(fb::RequestBody::EditDirectory, [this](const fb::Request& q, rpc::Responder& r) { on_edit_directory(q, r); });
  server_->on(fb::RequestBody::GetDirectory, [this](const fb::Request& q, rpc::Responder& r) { on_get_directory(q, r); });
  server_->on(fb::RequestBody::QueryAudit, [this](const fb::Request& q, rpc::Responder& r) { on_query_audit(q, r); });
  server_->on(fb::RequestBody::RecordAudit, [this](const fb::Request& q, rpc::Responder& r) { on_record_audit(q, r); });
  audit_ = std::make_unique<security::AuditTrail>(*publisher_, runtime_, clock_, options_.instance,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(*server_);
  runtime_.every(5000, [this] {
    auto g = audit_->gauges();
    g.emplace_back("directory_version", static_cast<double>(directory_->current().version));
    g.emplace_back("usage_ticks_charged", static_cast<double>(stats_.ticks));
    g.emplace_back("usage_ticks_refused", static_cast<double>(stats_.refused));
    bus::publish_ops_metrics(*publisher_, runtime_.batch(), "billing", options_.instance, g);
  });

  runtime_.watch(server_->socket(), [this] { server_->poll_in(); });
  subscriber_->attach(runtime_);
  // After the subscriber's replay work: every change of the iteration is in
  // the batch before the runtime commits it with the cursors.
  runtime_.each_iteration([this] {
    settle(runtime_.batch());
    return false;
  });
  publisher_->attach(runtime_);
  runtime_.after_commit([this] {
    server_->flush();
    ledger_.trim_cache(options_.cache_lines);
  });
  runtime_.every(options_.check_ms, [this] {
    // A new month lifts last month's blocks; settle() writes what changed.
    uint32_t month = month_of(clock_.now_ns());
    std::vector<std::string> names;
    for (auto& [name, st] : accounts_) {
      if (st.budget || st.blocked) names.push_back(name);
    }
    for (auto& n : names) check_budget(n, month, runtime_.batch());
  });
  runtime_.every(3600'000, [this] { trim_audit(); });
  runtime_.on_reload([this] {
    auto s = reload_rates();
    if (!s) spdlog::error("SIGHUP: {}", s.message());
  });
  spdlog::info("billing on {} (stream {}), rate card {} with {} price period(s), currency {}", endpoint(), stream(),
               options_.rates, card_.periods().size(), options_.currency);
}

BillingShell::~BillingShell() = default;

Status BillingShell::reload_rates() {
  auto card = load_rate_card(options_.rates);
  if (!card) return Status::invalid("rate card not reloaded, the previous one stays in force: " + card.status().message());
  if (!card->currency().empty() && card->currency() != options_.currency) {
    return Status::invalid("rate card not reloaded, the previous one stays in force: " + options_.rates + " is in " +
                           card->currency() + " but billing.currency is " + options_.currency);
  }
  card_ = std::move(card).value();
  ++stats_.reloads;
  spdlog::info("rate card {} reloaded: {} price period(s)", options_.rates, card_.periods().size());
  return Status::success();
}

void BillingShell::on_event(const bus::Event& e, storage::Batch& batch) {
  switch (e.type()) {
    case fb::Payload::AuditRecord:
      keep_audit(e, batch);
      return;
    case fb::Payload::UsageTick: {
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
      return;
    }
    case fb::Payload::JobSubmitted: {
      auto* j = e.as<fb::JobSubmitted>();
      if (!j->spec() || !j->spec()->account()) return;
      auto account = j->spec()->account()->string_view();
      if (account.find('\0') != std::string_view::npos) return;
      batch.put(jobs_cf_, Key().u64(j->job_id()).str(account).bytes(), "");
      return;
    }
    case fb::Payload::CloudLease:
      on_cloud_lease(e, batch);
      return;
    default:
      return;  // other job.* events carry nothing billing needs
  }
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

void BillingShell::scan_lines(const UsageFilter& f,
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
    store_.scan(lines_cf_, lo, hi, visit);
  };
  if (!f.account.empty()) {
    scan_account(f.account);
  } else if (f.job != 0) {
    std::vector<std::string> accounts;
    store_.scan_prefix(jobs_cf_, Key().u64(f.job).bytes(), [&](std::string_view k, std::string_view) {
      KeyReader r(k);
      r.u64();
      accounts.emplace_back(r.str());
      return true;
    });
    for (auto& a : accounts) scan_account(a);
  } else {
    store_.scan(lines_cf_, "", "", visit);
  }
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
  scan_lines(f, [&](const LineKey& k, const Line& l) { report.add(k, l); });
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
  scan_lines(f, [&](const LineKey& k, const Line& l) { inv.add(k, l); });
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
