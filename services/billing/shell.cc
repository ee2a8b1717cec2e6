// Billing's construction and wiring: options and the rate card, the stored
// state restored, the ROUTER, the bus and the runtime's hooks. The usage
// events are in usage_events.cc, the usage requests in usage_calls.cc, cloud
// nodes in cloud_events.cc, the directory and audit in directory_calls.cc.
#include "shell.h"

#include <fstream>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

#include "calendar/calendar.h"

namespace trainyard::billing {

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
      // The ledger reads while it charges usage events: a failed read stops
      // the service (the event is applied again after the restart).
      ledger_([this](std::string_view k) { return read_or_abort(store_.get(lines_cf_, k)); },
              [this](std::string_view k) { return read_or_abort(store_.get(spends_cf_, k)); }),
      meter_(options_.cloud_overhead, options_.cloud_platform_account) {
  restore_state();
  open_sockets(env.ctx);
  serve_requests();
  audit_ = std::make_unique<security::AuditTrail>(*publisher_, runtime_, clock_, options_.instance,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(*server_);
  hook_into_runtime();
  spdlog::info("billing on {} (stream {}), rate card {} with {} price period(s), currency {}", endpoint(), stream(),
               options_.rates, card_.periods().size(), options_.currency);
}

void BillingShell::restore_state() {
  value_or_throw(store_.scan(cloud_cf_, "", "", [&](std::string_view, std::string_view v) {
    if (auto n = CloudNode::decode(v)) meter_.restore(std::move(*n));
    return true;
  }));
  value_or_throw(store_.scan(accounts_cf_, "", "", [&](std::string_view k, std::string_view v) {
    if (auto st = AccountState::decode(v)) accounts_.emplace(std::string(k), *st);
    return true;
  }));
}

void BillingShell::open_sockets(zmq::context_t& ctx) {
  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.instance);
  server_ = std::make_unique<rpc::Server>(ctx, options_.endpoint, "billing");
  bus::PublisherOptions po;
  po.instance = options_.instance;
  po.bus_endpoints = options_.bus_frontend;
  publisher_ = std::make_unique<bus::Publisher>(ctx, store_, *server_, po, clock_);
  publisher_->set_snapshot(
      [this](std::string_view prefix, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) {
        snapshot(prefix, b, emit);
      });

  bus::SubscriberOptions so;
  so.name = "billing";
  so.bus_endpoints = options_.bus_backend;
  so.prefixes = {"usage.", "job.", "cloud.", std::string(security::kAuditPrefix)};
  subscriber_ = std::make_unique<bus::Subscriber>(
      ctx, store_, so, [this](const bus::Event& e, storage::Batch& batch) { on_event(e, batch); });
}

void BillingShell::serve_requests() {
  using Handler = void (BillingShell::*)(const fb::Request&, rpc::Responder&);
  static constexpr std::pair<fb::RequestBody, Handler> kHandlers[] = {
      {fb::RequestBody::Ping, &BillingShell::on_ping},
      {fb::RequestBody::QueryUsage, &BillingShell::on_query_usage},
      {fb::RequestBody::GetInvoice, &BillingShell::on_invoice},
      {fb::RequestBody::EstimateCost, &BillingShell::on_estimate},
      {fb::RequestBody::SetBudget, &BillingShell::on_set_budget},
      {fb::RequestBody::ReloadRates, &BillingShell::on_reload},
      {fb::RequestBody::EditDirectory, &BillingShell::on_edit_directory},
      {fb::RequestBody::GetDirectory, &BillingShell::on_get_directory},
      {fb::RequestBody::QueryAudit, &BillingShell::on_query_audit},
      {fb::RequestBody::RecordAudit, &BillingShell::on_record_audit},
  };
  for (const auto& [body, handler] : kHandlers) {
    server_->on(body, [this, h = handler](const fb::Request& q, rpc::Responder& r) { (this->*h)(q, r); });
  }
}

void BillingShell::hook_into_runtime() {
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

void BillingShell::on_ping(const fb::Request&, rpc::Responder& r) {
  auto& b = r.builder();
  r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(b, "billing", options_.instance.c_str(), kVersion).Union());
}

}  // namespace trainyard::billing
