// trainyard-bus: the stateless XSUB/XPUB forwarder of the durable bus.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

#include "audit_relay.h"
#include "bus/event.h"
#include "bus/forwarder.h"
#include "util/runtime.h"
#include "util/service_main.h"

int main(int argc, char** argv) {
  trainyard::block_termination_signals();
  CLI::App app{"trainyard-bus: the bus forwarder. Publishers connect to its frontend (XSUB), subscribers to its "
               "backend (XPUB). It keeps no state: restart it at will."};
  trainyard::ServiceArgs args;
  trainyard::add_service_flags(app, args);
  std::string frontend, backend, endpoints_file;
  app.add_option("--frontend", frontend, "XSUB endpoint to bind (config bus.frontend, default tcp://127.0.0.1:5550)");
  app.add_option("--backend", backend, "XPUB endpoint to bind (config bus.backend, default tcp://127.0.0.1:5551)");
  app.footer("Config keys: bus.frontend, bus.backend (the endpoints to bind; defaults above), bus.hwm (messages "
             "queued per peer before ZeroMQ drops; default 1000000), billing.instance (whose heartbeats tell where "
             "to send the refusals it makes, for the audit trail; default billing), log.level, log.file, security.* "
             "(its key is KEYS_DIR/service-bus.key; SIGHUP re-reads authorized_keys).");
  app.add_option("--endpoints-file", endpoints_file,
                 "Write the bound endpoints here as 'frontend=...' and 'backend=...' lines (for port 0 / '*')");
  CLI11_PARSE(app, argc, argv);
  auto config = trainyard::load_service_config(args);
  trainyard::init_service_logging("bus", args, config);

  trainyard::bus::ForwarderOptions o;
  // In a shared config bus.frontend/backend may list two forwarders (what
  // services connect to); a forwarder binds one: say so rather than guess.
  auto one = [&](const std::string& flag, const char* key, const char* def) {
    if (!flag.empty()) return flag;
    auto v = config.get_strings(key);
    if (v.size() > 1) {
      std::fprintf(stderr, "error: %s lists %zu endpoints (what services connect to); give this forwarder the one "
                   "to bind with --%s\n", key, v.size(), key + 4);
      std::exit(2);
    }
    return v.empty() ? std::string(def) : v[0];
  };
  try {
    o.frontend = one(frontend, "bus.frontend", "tcp://127.0.0.1:5550");
    o.backend = one(backend, "bus.backend", "tcp://127.0.0.1:5551");
    o.hwm = static_cast<int>(config.get_int("bus.hwm", 1'000'000));
    o.audit_instance = config.get_string("billing.instance", "billing");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }

  auto security = trainyard::security::options_from_config(config, trainyard::bus::kBusPrincipal);
  if (!security) {
    spdlog::error("config: {}", security.status().message());
    return 2;
  }
  zmq::context_t ctx(1);
  auto site = trainyard::install_security(ctx, *security);  // before the sockets: they ask it
  if (!site) return 2;
  std::unique_ptr<trainyard::bus::Forwarder> fwd;
  try {
    fwd = std::make_unique<trainyard::bus::Forwarder>(ctx, o);
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot bind {} / {}: {}", o.frontend, o.backend, e.what());
    return 1;
  }
  if (!endpoints_file.empty()) {
    std::string tmp = endpoints_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) {
      spdlog::error("cannot write {}", endpoints_file);
      return 1;
    }
    std::fprintf(f, "frontend=%s\nbackend=%s\n", fwd->frontend().c_str(), fwd->backend().c_str());
    std::fclose(f);
    std::rename(tmp.c_str(), endpoints_file.c_str());
  }
  spdlog::info("forwarding {} -> {}", fwd->frontend(), fwd->backend());
  // Under CURVE its refusals go to billing's audit trail (audit_relay.h).
  std::unique_ptr<trainyard::bus::AuditRelay> relay;
  if (*site) relay = std::make_unique<trainyard::bus::AuditRelay>(ctx, *fwd);

  std::thread signals([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
      if (*site) (void)(*site)->reload();
    }
    spdlog::info("signal {}: stopping", sig);
    fwd->stop();
  });
  fwd->run();
  signals.join();
  relay.reset();  // its last second's records, if billing answers
  return 0;
}
