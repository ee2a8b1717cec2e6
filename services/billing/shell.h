// The billing service's I/O shell: RocksDB (ledger, spends, accounts), the
// durable subscriber of usage.* and job.*, the publisher of account.*, and
// the ROUTER that answers QueryUsage, GetInvoice, EstimateCost, SetBudget,
// ReloadRates and Ping. It also owns the site's directory of users, accounts
// and roles (EditDirectory, GetDirectory; published as directory.changed)
// and keeps every service's audit.* records (QueryAudit). The decisions
// live in core/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "core/budget.h"
#include "core/cloud_meter.h"
#include "core/ledger.h"
#include "core/rate_card.h"
#include "core/report.h"
#include "rpc/server.h"
#include "security/audit.h"
#include "security/authz.h"
#include "security/directory_feed.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/run_service.h"
#include "util/runtime.h"

namespace trainyard::billing {

// Everything read from the [billing] and [bus] sections.
struct BillingOptions {
  std::string endpoint = "tcp://127.0.0.1:5563";  // billing.endpoint
  std::string data = "data/billing";              // billing.data
  std::string rates;                              // billing.rates (required)
  std::string currency = "USD";                   // billing.currency
  std::string instance = "billing";               // billing.instance: stream account.@<instance>
  security::TrustSettings trust;                  // the directory's bootstrap, the audit rate
  int64_t audit_keep_days = 400;                  // billing.audit_keep_days: audit records older are deleted
  std::vector<std::string> bus_frontend;          // bus.frontend
  std::vector<std::string> bus_backend;           // bus.backend
  int64_t check_ms = 1000;                        // billing.check_ms: month-turn check
  OverheadRule cloud_overhead = OverheadRule::kTrigger;  // billing.cloud_overhead: "trigger" or "platform"
  std::string cloud_platform_account = "platform";       // billing.cloud_platform_account
  size_t cache_lines = 1'000'000;                 // billing.cache_lines
  bool fsync = false;                             // billing.fsync
  RateCard card;                                  // read from billing.rates by from_config

  // Reads the keys and the rate card; InvalidArgument names a missing or
  // bad key, or the card's file and line.
  static Result<BillingOptions> from_config(const Config& config);
  // Who this process is under CURVE (its key file, its streams).
  std::string principal() const { return "service:" + instance; }
};

struct BillingStats {
  uint64_t ticks = 0;           // usage ticks charged
  uint64_t refused = 0;         // malformed usage ticks (logged, not charged)
  uint64_t unpriced = 0;        // ticks of a GPU type the card does not price
  uint64_t events_published = 0;
  uint64_t reloads = 0;
};

class BillingShell {
 public:
  using Options = BillingOptions;
  static constexpr ServiceInfo kInfo{
      "billing",
      "charges usage ticks exactly once into a RocksDB ledger at the prices of a rate card (billing.rates), "
      "publishes account.warning / account.blocked when monthly budgets are crossed, and serves QueryUsage, "
      "GetInvoice, EstimateCost, SetBudget, ReloadRates and Ping on billing.endpoint. SIGHUP reloads the rate card."};
  static storage::Options store_options(const Options& o);

  // Restores accounts, binds the ROUTER, connects to the bus and hooks into
  // env.runtime (SIGHUP reloads the rate card). Throws zmq::error_t when
  // the endpoint cannot be bound.
  BillingShell(const ServiceEnv& env, BillingOptions options);
  ~BillingShell();

  nlohmann::json ready_info() const { return {{"endpoint", endpoint()}, {"stream", stream()}}; }
  const std::string& endpoint() const { return server_->endpoint(); }
  std::string stream() const { return publisher_->stream_for("account."); }
  // Re-reads billing.rates; on error keeps the card in force and says why.
  Status reload_rates();
  const BillingStats& stats() const { return stats_; }

 private:
  // The constructor's steps, in order: the cloud nodes and accounts stored
  // by earlier runs; the directory, the ROUTER, the publisher and the
  // subscriber; the request handlers; then (after the audit trail) the
  // timers and hooks.
  void restore_state();
  void open_sockets(zmq::context_t& ctx);
  void serve_requests();
  void hook_into_runtime();

  // The usage events and what they settle (usage_events.cc).
  void on_event(const bus::Event& e, storage::Batch& batch);
  void on_usage_tick(const bus::Event& e, storage::Batch& batch);
  void on_job_submitted(const bus::Event& e, storage::Batch& batch);
  // cloud.<pool>.<state> and usage on cloud nodes (cloud_events.cc).
  void on_cloud_lease(const bus::Event& e, storage::Batch& batch);
  // True when the tick was on a cloud node (charged at the node's price).
  bool charge_cloud_usage(const fb::UsageTick& t, storage::Batch& batch);
  void book(const CloudCharge& c, storage::Batch& batch);
  // Persists what the ledger changed and announces budget crossings.
  void settle(storage::Batch& batch);
  void check_budget(const std::string& account, uint32_t month, storage::Batch& batch);
  void publish(const AccountEvent& e, storage::Batch& batch);
  void tell_budget(const std::string& account, const AccountState& st, uint32_t month, int64_t spent,
                   storage::Batch& batch);
  void snapshot(std::string_view prefix, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit);

  security::Caller caller(const rpc::Responder& r) const {
    return security::Caller::of(r.principal(), directory_->current());
  }
  void on_ping(const fb::Request& req, rpc::Responder& r);
  // The usage requests (usage_calls.cc).
  void on_query_usage(const fb::Request& req, rpc::Responder& r);
  void on_invoice(const fb::Request& req, rpc::Responder& r);
  void on_estimate(const fb::Request& req, rpc::Responder& r);
  void on_set_budget(const fb::Request& req, rpc::Responder& r);
  void on_reload(const fb::Request& req, rpc::Responder& r);
  // Calls fn for every stored line matching `f`.
  // Calls fn for each stored line the filter matches; a failed read is returned.
  Status scan_lines(const UsageFilter& f, const std::function<void(const LineKey&, const Line&)>& fn) const;
  // The directory and the audit trail (directory_calls.cc).
  void on_edit_directory(const fb::Request& req, rpc::Responder& r);
  void on_get_directory(const fb::Request& req, rpc::Responder& r);
  void on_query_audit(const fb::Request& req, rpc::Responder& r);
  void on_record_audit(const fb::Request& req, rpc::Responder& r);
  void keep_audit(const bus::Event& e, storage::Batch& batch);
  void trim_audit();

  BillingOptions options_;
  const Clock& clock_;
  RateCard card_;
  storage::Store& store_;
  storage::Cf lines_cf_, spends_cf_, accounts_cf_, jobs_cf_, cloud_cf_, audit_cf_;
  Runtime& runtime_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<bus::Publisher> publisher_;
  std::unique_ptr<bus::Subscriber> subscriber_;
  std::unique_ptr<security::DirectoryFeed> directory_;
  std::unique_ptr<security::AuditTrail> audit_;
  Ledger ledger_;
  CloudMeter meter_;
  std::map<std::string, AccountState, std::less<>> accounts_;
  struct BudgetTold {
    uint32_t month = 0;
    int64_t limit = -1;
    int64_t spent = 0;
  };
  std::map<std::string, BudgetTold, std::less<>> budget_told_;  // the last account.budget per account
  BillingStats stats_;
  int64_t last_refusal_log_ms_ = 0;
};

}  // namespace trainyard::billing
