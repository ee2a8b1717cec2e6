// The trainyard-scheduler service's options, read from its config file
// (the core's own [scheduler] keys are read by config_keys.cc).
#include "config_keys.h"
#include "security/site.h"
#include "shell.h"

namespace trainyard::scheduler {

Result<ShellOptions> ShellOptions::from_config(const Config& c) {
  ShellOptions o;
  try {
    o.endpoint = c.get_string("scheduler.endpoint", o.endpoint);
    o.data = c.get_string("scheduler.data", o.data);
    o.instance = c.get_string("scheduler.instance", o.instance);
    auto trust = security::trust_from_config(c);
    if (!trust) return trust.status();
    o.trust = std::move(trust).value();
    if (c.has("bus.frontend")) o.bus_frontend = c.get_strings("bus.frontend");
    if (c.has("bus.backend")) o.bus_backend = c.get_strings("bus.backend");
    o.broker_endpoint = c.get_string("broker.endpoint", o.broker_endpoint);
    o.broker_instance = c.get_string("broker.instance", o.broker_instance);
    o.cycle_ms = c.get_int("scheduler.cycle_ms", o.cycle_ms);
    if (o.cycle_ms < 1 || o.cycle_ms > 600'000) {
      return Status::invalid("scheduler.cycle_ms: " + std::to_string(o.cycle_ms) + " is out of range (1 to 600000)");
    }
    int64_t allocate_ms = c.get_int("scheduler.allocate_timeout_ms", o.allocate_timeout_ms);
    if (allocate_ms < 1 || allocate_ms > 600'000) {
      return Status::invalid("scheduler.allocate_timeout_ms: " + std::to_string(allocate_ms) +
                             " is out of range (1 to 600000)");
    }
    o.allocate_timeout_ms = static_cast<int>(allocate_ms);
    o.query_page_bytes = c.get_int("scheduler.query_page_bytes", o.query_page_bytes);
    if (o.query_page_bytes < 64 * 1024 || o.query_page_bytes > 32 * 1024 * 1024) {
      return Status::invalid("scheduler.query_page_bytes: " + std::to_string(o.query_page_bytes) +
                             " is out of range (65536 to 33554432: a reply must stay under the 64 MiB message limit)");
    }
    auto durability = storage::parse_durability("scheduler.durability", c.get_string("scheduler.durability", "wal"));
    if (!durability) return durability.status();
    o.durability = *durability;
    auto choice = scheduler_config_from(c);
    if (!choice) return choice.status();
    o.policy = choice->policy;
    o.core = std::move(choice->core);
    auto notify = NotifyOptions::from_config(c);
    if (!notify) return notify.status();
    o.notify = std::move(notify).value();
    o.core.notify_webhook_hosts = o.notify.webhook_hosts;
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  return o;
}

}  // namespace trainyard::scheduler
