#include "cloud_options.h"

#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "calendar/calendar.h"
#include "money/money.h"

namespace trainyard::broker {

namespace {

constexpr int64_t kDay = 86400;

Status check_pool_name(std::string_view name) {
  if (name.empty() || name.size() > 40) return Status::invalid(fmt::format("pools.{}: a pool name has 1 to 40 characters", name));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return Status::invalid(fmt::format(
          "pools.{}: a pool name may hold only letters, digits, '-' and '_' (it names the pool's nodes, <pool>-<lease>)",
          name));
    }
  }
  return Status::success();
}

Result<int64_t> price_at(const Config& c, const std::string& key) {
  auto node = c.table().at_path(key);
  if (!node) return int64_t{0};
  if (auto s = node.value<std::string>()) return parse_price_micros(key, *s);
  if (auto d = node.value<double>()) {
    if (!std::isfinite(*d) || *d < 0 || *d > 1e9) return Status::invalid(key + ": a price per node-hour is 0 to 1e9");
    return static_cast<int64_t>(std::llround(*d * 1e6));
  }
  return Status::invalid(key + ": give the price per node-hour as a number or a string, e.g. \"29.39\"");
}

std::vector<std::string> driver_at(const Config& c, const std::string& key) {
  auto node = c.table().at_path(key);
  if (auto s = node.value<std::string>()) return {*s};
  return c.get_strings(key);
}

// "2026-12-01" (a TOML date or a string) -> UTC midnight in ns.
Result<int64_t> date_ns(const toml::node& n, const std::string& key) {
  int64_t y = 0;
  unsigned m = 0, d = 0;
  if (auto date = n.value<toml::date>()) {
    y = date->year, m = date->month, d = date->day;
  } else if (auto s = n.value<std::string>(); s && s->size() == 10 && (*s)[4] == '-' && (*s)[7] == '-') {
    auto digits = [&](size_t at, size_t len, auto& out) {
      out = 0;
      for (size_t i = at; i < at + len; ++i) {
        if (!std::isdigit(static_cast<unsigned char>((*s)[i]))) return false;
        out = out * 10 + static_cast<std::decay_t<decltype(out)>>((*s)[i] - '0');
      }
      return true;
    };
    if (!digits(0, 4, y) || !digits(5, 2, m) || !digits(8, 2, d)) y = 0;
  }
  if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1 || d > 31) {
    return Status::invalid(key + ": give the date the price starts as 2026-12-01");
  }
  return days_from_civil(y, m, d) * kNsPerDay;
}

// pools.<name>.prices = [{from = 2026-12-01, price_per_node_hour = "30.00", spot_price_per_node_hour = "11.00"}, ...]
Status read_dated_prices(const Config& c, const std::string& key, PoolConfig& p) {
  auto node = c.table().at_path(key);
  if (!node) return Status::success();
  const auto* arr = node.as_array();
  if (!arr) return Status::invalid(key + ": a list of {from, price_per_node_hour, spot_price_per_node_hour}");
  for (size_t i = 0; i < arr->size(); ++i) {
    std::string at = key + "[" + std::to_string(i) + "]";
    const auto* t = (*arr)[i].as_table();
    if (!t || !t->contains("from") || !t->contains("price_per_node_hour")) {
      return Status::invalid(at + ": needs from and price_per_node_hour (spot_price_per_node_hour is optional)");
    }
    for (auto& [k, v] : *t) {
      if (k != "from" && k != "price_per_node_hour" && k != "spot_price_per_node_hour") {
        return Status::invalid(at + "." + std::string(k.str()) + ": unknown (from, price_per_node_hour, spot_price_per_node_hour)");
      }
    }
    PoolConfig::DatedPrice d;
    auto from = date_ns(*t->get("from"), at + ".from");
    if (!from) return from.status();
    d.from_ns = *from;
    auto price = [&](const char* name) -> Result<int64_t> {
      const toml::node* v = t->get(name);
      if (!v) return int64_t{0};
      if (auto s = v->value<std::string>()) return parse_price_micros(at + "." + name, *s);
      if (auto x = v->value<double>(); x && std::isfinite(*x) && *x >= 0 && *x <= 1e9) return std::llround(*x * 1e6);
      return Status::invalid(at + "." + name + ": a price per node-hour such as \"29.39\"");
    };
    auto od = price("price_per_node_hour");
    if (!od) return od.status();
    auto sp = price("spot_price_per_node_hour");
    if (!sp) return sp.status();
    d.on_demand_micros = *od;
    d.spot_micros = *sp;
    if (!p.prices.empty() && d.from_ns <= p.prices.back().from_ns) {
      return Status::invalid(at + ".from: dates must rise (each after the one before)");
    }
    p.prices.push_back(d);
  }
  return Status::success();
}

Result<PoolConfig> read_pool(const Config& c, const std::string& name) {
  PoolConfig p;
  p.name = name;
  std::string k = "pools." + name + ".";
  p.driver = driver_at(c, k + "driver");
  if (p.driver.empty() || p.driver.front().empty()) {
    return Status::invalid(k + "driver is missing: give the driver program, e.g. [\"deploy/drivers/local\", \"--state\", \"/var/lib/trainyard/cloud\"]");
  }
  p.gpu_type = c.get_string(k + "gpu_type", "");
  if (p.gpu_type.empty()) return Status::invalid(k + "gpu_type is missing: the GPU type of the pool's nodes, e.g. \"A100\"");
  p.gpus_per_node = static_cast<uint32_t>(c.get_int(k + "gpus_per_node", 8, 1, 1024));
  p.cpus = static_cast<uint32_t>(c.get_int(k + "cpus", 0, 0, 1 << 20));
  p.memory_mb = static_cast<uint64_t>(c.get_int(k + "memory_mb", 0, 0, INT64_C(1) << 40));
  p.partition = c.get_string(k + "partition", "");
  for (auto& kv : c.get_strings(k + "labels")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Status::invalid(fmt::format("{}labels: '{}' is not key=value", k, kv));
    p.labels.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  p.min_nodes = static_cast<uint32_t>(c.get_int(k + "min_nodes", 0, 0, 100000));
  p.max_nodes = static_cast<uint32_t>(c.get_int(k + "max_nodes", 4, 0, 100000));
  if (p.min_nodes > p.max_nodes) {
    return Status::invalid(fmt::format("{}min_nodes ({}) is above max_nodes ({})", k, p.min_nodes, p.max_nodes));
  }
  auto od = price_at(c, k + "price_per_node_hour");
  if (!od) return od.status();
  p.price_micros_per_hour = *od;
  auto sp = price_at(c, k + "spot_price_per_node_hour");
  if (!sp) return sp.status();
  p.spot_price_micros_per_hour = *sp;
  p.spot = c.get_bool(k + "spot", false);
  if (p.spot && p.spot_price_micros_per_hour == 0) {
    return Status::invalid(k + "spot = true needs spot_price_per_node_hour");
  }
  if (auto dated = read_dated_prices(c, k + "prices", p); !dated) return dated;
  p.boot_timeout_s = c.get_int(k + "boot_timeout_s", 600, 1, kDay);
  p.idle_release_s = c.get_int(k + "idle_release_s", 300, 0, 30 * kDay);
  p.max_concurrent_launches = static_cast<uint32_t>(c.get_int(k + "max_concurrent_launches", 4, 1, 10000));
  p.max_wait_before_burst_s = c.get_int(k + "max_wait_before_burst_s", -1, -1, 30 * kDay);
  return p;
}

}  // namespace

Result<int64_t> parse_price_micros(std::string_view key, std::string_view text) {
  auto v = parse_millionths(text, 1'000'000'000);
  if (!v) return Status::invalid(fmt::format("{}: {} (a price per node-hour such as \"29.39\")", key, v.status().message()));
  return v;
}

Result<CloudSettings> CloudSettings::from_config(const Config& config) try {
  CloudSettings s;
  s.scheduler = config.get_string("scheduler.endpoint", s.scheduler);
  s.poll_ms = config.get_int("cloud.poll_ms", s.poll_ms, 50, 600000);
  s.reconcile_s = config.get_int("cloud.reconcile_s", s.reconcile_s, 1, kDay);
  s.driver_timeout_s = config.get_int("cloud.driver_timeout_s", s.driver_timeout_s, 1, 3600);
  s.core.max_wait_before_burst_s = config.get_int("cloud.max_wait_before_burst_s", s.core.max_wait_before_burst_s, 0, 30 * kDay);
  s.core.burst_wait_per_gpu_hour_s =
      config.get_double("cloud.burst_wait_per_gpu_hour_s", s.core.burst_wait_per_gpu_hour_s, 0, 30.0 * kDay);
  s.core.rented_for_eligible_only = config.get_bool("cloud.rented_for_eligible_only", s.core.rented_for_eligible_only);
  s.core.burst_large_gpu_hours = config.get_double("cloud.burst_large_gpu_hours", s.core.burst_large_gpu_hours, 0, 1e9);
  s.core.burst_large_wait_s = config.get_int("cloud.burst_large_wait_s", s.core.burst_large_wait_s, 0, 30 * kDay);
  s.core.estimate_owned_start = config.get_bool("cloud.estimate_owned_start", s.core.estimate_owned_start);
  s.core.move_to_owned_min_left_s =
      config.get_int("cloud.move_to_owned_min_left_s", s.core.move_to_owned_min_left_s, 0, 365 * kDay);
  s.core.orphan_grace_s = config.get_int("cloud.orphan_grace_s", s.core.orphan_grace_s, 0, kDay);
  s.core.backoff_s = config.get_int("cloud.backoff_s", s.core.backoff_s, 1, kDay);
  s.core.backoff_max_s = config.get_int("cloud.backoff_max_s", s.core.backoff_max_s, s.core.backoff_s, 7 * kDay);
  s.core.spot_fallback_after =
      static_cast<uint32_t>(config.get_int("cloud.spot_fallback_after", s.core.spot_fallback_after, 0, 1000));
  auto pools = config.table().at_path("pools");
  if (!pools) return s;
  const auto* t = pools.as_table();
  if (!t) return Status::invalid("pools must be tables: [pools.<name>]");
  for (const auto& [name, v] : *t) {
    std::string n(name.str());
    if (auto st = check_pool_name(n); !st) return st;
    if (!v.is_table()) return Status::invalid("pools." + n + " must be a table: [pools." + n + "]");
    auto p = read_pool(config, n);
    if (!p) return p.status();
    s.pool_keys_dirs[n] = config.get_string("pools." + n + ".keys_dir",
                                            config.get_string("security.keys_dir", "/etc/trainyard/keys"));
    s.pools.push_back(std::move(p).value());
  }
  return s;
} catch (const std::exception& e) {
  return Status::invalid(e.what());
}

}  // namespace trainyard::broker
