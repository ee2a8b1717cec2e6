#include "shell.h"

#include <spdlog/spdlog.h>

namespace trainyard::bus {

namespace {

// The one endpoint of `key` this forwarder binds.
Result<std::string> one_endpoint(const Config& config, const char* key, const char* def) {
  auto v = config.get_strings(key);
  if (v.size() > 1) {
    return Status::invalid(std::string(key) + " lists " + std::to_string(v.size()) +
                           " endpoints (what services connect to); give this forwarder the one to bind with --" +
                           (key + 4));
  }
  return v.empty() ? std::string(def) : v[0];
}

}  // namespace

Result<BusOptions> BusOptions::from_config(const Config& config) {
  BusOptions o;
  try {
    auto frontend = one_endpoint(config, "bus.frontend", "tcp://127.0.0.1:5550");
    if (!frontend) return frontend.status();
    auto backend = one_endpoint(config, "bus.backend", "tcp://127.0.0.1:5551");
    if (!backend) return backend.status();
    o.forwarder.frontend = *frontend;
    o.forwarder.backend = *backend;
    o.forwarder.hwm = static_cast<int>(config.get_int("bus.hwm", 1'000'000, 0, 1'000'000'000));
    o.forwarder.audit_instance = config.get_string("billing.instance", "billing");
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  return o;
}

BusShell::BusShell(const StatelessEnv& env, Options options)
    : forwarder_(std::make_unique<Forwarder>(env.ctx, options.forwarder)) {
  spdlog::info("forwarding {} -> {}", forwarder_->frontend(), forwarder_->backend());
  if (env.site) relay_ = std::make_unique<AuditRelay>(env.ctx, *forwarder_);
  thread_ = std::thread([this] { forwarder_->run(); });
}

BusShell::~BusShell() {
  forwarder_->stop();
  thread_.join();
  relay_.reset();  // its last second's records, if billing answers
}

nlohmann::json BusShell::ready_info() const {
  return {{"endpoint", forwarder_->frontend()}, {"frontend", forwarder_->frontend()}, {"backend", forwarder_->backend()}};
}

}  // namespace trainyard::bus
