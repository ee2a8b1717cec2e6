// The billing service's I/O shell: RocksDB (ledger, spends, accounts), the
// durable subscriber of usage.* and job.*, the publisher of account.*, and
// the ROUTER that answers QueryUsage, GetInvoice, EstimateCost, SetBudget,
// ReloadRates and Ping. The decisions live in core/.
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
#include "core/ledger.h"
#include "core/rate_card.h"
#include "core/report.h"
#include "rpc/server.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/runtime.h"

namespace trainyard::billing {

// Everything read from the [billing] and [bus] sections.
struct BillingOptions {
  std::string endpoint = "tcp://127.0.0.1:5563";  // billing.endpoint
  std::string data = "data/billing";              // billing.data
  std::string rates;                              // billing.rates (required)
  std::string currency = "USD";                   // billing.currency
  std::string instance = "billing";               // billing.instance: stream account.@<instance>
  std::vector<std::string> bus_frontend;          // bus.frontend
  std::vector<std::string> bus_backend;           // bus.backend
  int64_t check_ms = 1000;                        // billing.check_ms: month-turn check
  size_t cache_lines = 1'000'000;                 // billing.cache_lines
  bool fsync = false;                             // billing.fsync

  // Reads the keys; InvalidArgument names a missing or bad one.
  static Result<BillingOptions> from_config(const Config& config);
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
  // Loads the rate card (a bad one is refused with its file and line),
  // opens the store, binds the ROUTER, connects to the bus.
  static Result<std::unique_ptr<BillingShell>> create(zmq::context_t& ctx, BillingOptions options,
                                                      const Clock& clock);
  ~BillingShell();

  // Runs until SIGTERM/SIGINT; SIGHUP reloads the rate card.
  int run();
  const std::string& endpoint() const { return server_->endpoint(); }
  std::string stream() const { return publisher_->stream_for("account."); }
  // Re-reads billing.rates; on error keeps the card in force and says why.
  Status reload_rates();
  const BillingStats& stats() const { return stats_; }

 private:
  BillingShell(zmq::context_t& ctx, BillingOptions options, const Clock& clock, RateCard card,
               std::unique_ptr<storage::Store> store);

  void on_event(const bus::Event& e, storage::Batch& batch);
  // Persists what the ledger changed and announces budget crossings.
  void settle(storage::Batch& batch);
  void check_budget(const std::string& account, uint32_t month, storage::Batch& batch);
  void publish(const AccountEvent& e, storage::Batch& batch);
  void snapshot(std::string_view prefix, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit);
  // Calls fn for every stored line matching `f`.
  void scan_lines(const UsageFilter& f, const std::function<void(const LineKey&, const Line&)>& fn) const;

  void on_query_usage(const fb::Request& req, rpc::Responder& r);
  void on_invoice(const fb::Request& req, rpc::Responder& r);
  void on_estimate(const fb::Request& req, rpc::Responder& r);
  void on_set_budget(const fb::Request& req, rpc::Responder& r);
  void on_reload(const fb::Request& req, rpc::Responder& r);

  BillingOptions options_;
  const Clock& clock_;
  RateCard card_;
  std::unique_ptr<storage::Store> store_;
  storage::Cf lines_cf_, spends_cf_, accounts_cf_, jobs_cf_;
  Runtime runtime_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<bus::Publisher> publisher_;
  std::unique_ptr<bus::Subscriber> subscriber_;
  Ledger ledger_;
  std::map<std::string, AccountState, std::less<>> accounts_;
  BillingStats stats_;
  int64_t last_refusal_log_ms_ = 0;
};

}  // namespace trainyard::billing
