// trainyard-billing: meters the agents' usage ticks into an exact ledger,
// prices them with the rate card, enforces monthly budgets (account.*), and
// answers usage, invoice and estimate requests.
#include <spdlog/spdlog.h>

#include "shell.h"
#include "util/runtime.h"
#include "util/service_main.h"

int main(int argc, char** argv) {
  using namespace trainyard;
  block_termination_signals();
  CLI::App app{
      "trainyard-billing: charges usage ticks exactly once into a RocksDB ledger at the prices of a rate card "
      "(billing.rates), publishes account.warning / account.blocked when monthly budgets are crossed, and serves "
      "QueryUsage, GetInvoice, EstimateCost, SetBudget, ReloadRates and Ping on billing.endpoint. SIGHUP reloads "
      "the rate card."};
  ServiceArgs args;
  add_service_flags(app, args);
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "Once bound, write {\"pid\", \"endpoint\", \"stream\"} JSON here (atomically)");
  CLI11_PARSE(app, argc, argv);
  auto config = load_service_config(args);
  init_service_logging("billing", args, config);

  auto options = billing::BillingOptions::from_config(config);
  if (!options) {
    spdlog::error("{}", options.status().message());
    return 2;
  }
  zmq::context_t ctx(1);
  SystemClock clock;
  auto shell = billing::BillingShell::create(ctx, std::move(options).value(), clock);
  if (!shell) {
    spdlog::error("{}", shell.status().message());
    return 2;
  }
  write_ready_file(ready_file, {{"endpoint", (*shell)->endpoint()}, {"stream", (*shell)->stream()}});
  int sig = (*shell)->run();
  spdlog::info("stopping (signal {})", sig);
  return 0;
}
