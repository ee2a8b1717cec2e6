// ty-sim's --pool, --burst-after and --burst-sweep.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "cloud.h"
#include "core/cloud_lease.h"

namespace trainyard::scheduler::sim {
namespace {

constexpr const char* kPoolSyntax =
    "NAME:NODESxGPUS:TYPE[,boot=180s|120s-300s][,bootfail=0.02][,price=29.39][,spot=0.37][,interrupt=0.05][,max=N]"
    "[,min=N][,idle=300s][,launches=N]";

bool to_uint(const std::string& s, uint32_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool to_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

// "90", "90s", "5m", "1.5h", "2d" -> seconds (>= 0).
bool to_seconds(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  double unit = 1;
  std::string num = s;
  switch (s.back()) {
    case 's': unit = 1; num.pop_back(); break;
    case 'm': unit = 60; num.pop_back(); break;
    case 'h': unit = 3600; num.pop_back(); break;
    case 'd': unit = 86400; num.pop_back(); break;
    default: break;
  }
  double v = 0;
  if (!to_double(num, &v) || v < 0 || v * unit > 365.0 * 86400) return false;
  *out = static_cast<int64_t>(std::llround(v * unit));
  return true;
}

Status bad_pool(const std::string& text, const std::string& why) {
  return Status::invalid("--pool '" + text + "': " + why + " (syntax: " + kPoolSyntax + ")");
}

// NAME:NODESxGPUS:TYPE
Status parse_head(const std::string& text, const std::string& head, CloudPoolSpec& p) {
  auto c1 = head.find(':');
  auto c2 = c1 == std::string::npos ? std::string::npos : head.find(':', c1 + 1);
  if (c2 == std::string::npos) return bad_pool(text, "expected NAME:NODESxGPUS:TYPE");
  p.name = head.substr(0, c1);
  std::string shape = head.substr(c1 + 1, c2 - c1 - 1);
  p.gpu_type = head.substr(c2 + 1);
  if (p.name.empty() || p.name.find_first_of(" ,=") != std::string::npos) return bad_pool(text, "NAME is empty or odd");
  auto x = shape.find('x');
  if (x == std::string::npos || !to_uint(shape.substr(0, x), &p.max_nodes) || !to_uint(shape.substr(x + 1), &p.gpus) ||
      p.max_nodes == 0 || p.gpus == 0 || p.gpus > 64) {
    return bad_pool(text, "'" + shape + "' is not NODESxGPUS (both at least 1, at most 64 GPUs a node)");
  }
  if (p.gpu_type.empty()) return bad_pool(text, "TYPE is empty");
  return Status::success();
}

Status parse_key(const std::string& text, const std::string& key, const std::string& value, CloudPoolSpec& p) {
  bool ok = false;
  if (key == "boot") {
    auto dash = value.find('-');
    ok = dash == std::string::npos
             ? to_seconds(value, &p.boot_s)
             : to_seconds(value.substr(0, dash), &p.boot_s) && to_seconds(value.substr(dash + 1), &p.boot_max_s) &&
                   p.boot_max_s >= p.boot_s;
  } else if (key == "bootfail") {
    ok = to_double(value, &p.boot_fail) && p.boot_fail >= 0 && p.boot_fail < 1;
  } else if (key == "interrupt") {
    ok = to_double(value, &p.interrupts_per_hour) && p.interrupts_per_hour >= 0 && p.interrupts_per_hour <= 100;
  } else if (key == "idle") {
    ok = to_seconds(value, &p.idle_s);
  } else if (key == "price") {
    ok = to_double(value, &p.price) && p.price >= 0;
  } else if (key == "spot") {
    ok = to_double(value, &p.spot) && p.spot > 0 && p.spot <= 10;
  } else if (key == "max") {
    ok = to_uint(value, &p.max_nodes) && p.max_nodes > 0;
  } else if (key == "min") {
    ok = to_uint(value, &p.min_nodes);
  } else if (key == "launches") {
    ok = to_uint(value, &p.launches) && p.launches > 0;
  } else {
    return bad_pool(text, "unknown key '" + key + "' (known: boot, bootfail, price, spot, interrupt, max, min, idle, launches)");
  }
  if (!ok) return bad_pool(text, key + "='" + value + "' is not valid");
  return Status::success();
}

}  // namespace

BurstPolicy default_burst_policy() {
  broker::CloudOptions o;
  BurstPolicy b{o.max_wait_before_burst_s, o.burst_wait_per_gpu_hour_s, o.rented_for_eligible_only,
                o.burst_large_gpu_hours, o.burst_large_wait_s, o.estimate_owned_start};
  b.move_min_left_s = o.move_to_owned_min_left_s;
  return b;
}

Result<CloudPoolSpec> parse_pool(const std::string& text) {
  std::stringstream in(text);
  std::string part;
  CloudPoolSpec p;
  bool head = true;
  while (std::getline(in, part, ',')) {
    if (head) {
      if (auto s = parse_head(text, part, p); !s) return s;
      head = false;
      continue;
    }
    auto eq = part.find('=');
    if (eq == std::string::npos) return bad_pool(text, "'" + part + "' is not KEY=VALUE");
    if (auto s = parse_key(text, part.substr(0, eq), part.substr(eq + 1), p); !s) return s;
  }
  if (head) return bad_pool(text, "empty");
  if (p.min_nodes > p.max_nodes) return bad_pool(text, "min is above the pool's node count");
  if (p.interrupts_per_hour > 0 && p.spot <= 0) return bad_pool(text, "interrupt= needs spot= (only spot nodes are reclaimed)");
  return p;
}

Result<int64_t> parse_burst_after(const std::string& text) {
  if (text == "never") return kBurstNever;
  int64_t s = 0;
  if (!to_seconds(text, &s)) {
    return Status::invalid("--burst-after: '" + text + "' is not a duration (0, 90s, 5m, 1h, 2d) or 'never'");
  }
  return s;
}

Result<int64_t> parse_burst_large_wait(const std::string& text) {
  int64_t s = 0;
  if (!to_seconds(text, &s) || s < 0 || s > 30 * 86400) {
    return Status::invalid("--burst-large-wait: '" + text + "' is not a duration from 0 to 30d (0, 90s, 5m, 4h, 2d)");
  }
  return s;
}

Result<std::vector<int64_t>> parse_burst_sweep(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    auto s = part == "always" ? Result<int64_t>(kBurstAlways) : parse_burst_after(part);
    if (!s) {
      return Status::invalid("--burst-sweep: '" + part + "' is not a duration (0, 90s, 5m, 1h, 2d), 'always' or 'never'");
    }
    out.push_back(*s);
  }
  if (out.empty()) return Status::invalid("--burst-sweep: no thresholds given (e.g. always,0,5m,15m,30m,1h,never)");
  return out;
}

std::string format_burst_after(int64_t s) {
  if (s == kBurstNever) return "never";
  if (s == kBurstAlways) return "always";
  if (s == 0) return "0";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

}  // namespace trainyard::scheduler::sim
