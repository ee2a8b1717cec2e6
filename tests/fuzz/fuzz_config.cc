// The config reader: any text as a trainyard.toml, then the key schema and
// typed, range-checked reads. Errors are values or start-up exceptions
// (std::runtime_error), never crashes.
#include <stdexcept>

#include "util/config.h"
#include "util/config_schema.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = Config::parse(text, "fuzz.toml");
  if (!c.ok()) return 0;
  (void)ConfigSchema::trainyard().check(*c);
  try {
    (void)c->get_int("scheduler.cycle_ms", 1000, 1, 3'600'000);
    (void)c->get_double("scheduler.fairshare.half_life_s", 0, 0, 1e12);
    (void)c->get_strings("bus.frontend");
    (void)c->get_bool("agent.simulate");
    (void)c->get_string("log.level");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
