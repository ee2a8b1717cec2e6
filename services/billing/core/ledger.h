// The ledger: usage and cost per (account, day, user, job, resource, GPU
// type, price period) line, charged exactly. Each line keeps its exact usage
// in unit-nanoseconds and its cost as whole micro-units plus the exact
// remainder (a fraction with a fixed denominator), so a line's cost is always
// floor(exact cost of everything on it): one rounding per line, and any total
// is the plain sum of its lines.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/rate_card.h"
#include "util/status.h"

namespace trainyard::billing {

using u128 = unsigned __int128;

enum class Resource : uint32_t { kGpu = 0, kCpu = 1, kMemory = 2 };
std::string_view resource_name(Resource r);  // "gpu", "cpu", "memory"

// What one usage.tick may hold: one lease on one node, for at most a month
// (an agent ticks every few seconds; a tick spanning an agent's long outage
// is still far shorter). A tick past any bound is refused, never charged.
inline constexpr uint32_t kMaxTickGpus = 64;           // GPU indices are a 64-bit mask
inline constexpr uint32_t kMaxTickCpus = 1u << 16;
inline constexpr uint64_t kMaxTickMemoryMb = 1ull << 32;  // 4 PiB
inline constexpr int64_t kMaxTickNs = 31LL * 86400 * 1'000'000'000;

// One usage.tick as the core reads it (views into the event).
struct Usage {
  std::string_view account;
  std::string_view user;
  std::string_view partition;
  std::string_view gpu_type;
  uint64_t job = 0;
  uint32_t gpus = 0;
  uint32_t cpus = 0;
  uint64_t memory_mb = 0;
  int64_t start_ns = 0;  // [start_ns, end_ns)
  int64_t end_ns = 0;
};

struct LineKey {
  std::string account;
  uint32_t day = 0;  // UTC days since 1970-01-01
  std::string user;
  uint64_t job = 0;
  Resource resource = Resource::kGpu;
  std::string gpu_type;  // GPU lines only
  uint32_t period = 0;   // from_day of the price period that priced it

  // Ordered by account, then day: an account's month is one range scan.
  std::string encode() const;
  static std::optional<LineKey> decode(std::string_view key);
};

struct Line {
  u128 quantity = 0;        // GPU-ns, core-ns or MB-ns
  int64_t cost_micros = 0;  // floor of the exact cost
  u128 remainder = 0;       // exact cost - cost_micros, in 1/denominator(resource) micro-units

  std::string encode() const;  // 40 bytes
  static std::optional<Line> decode(std::string_view value);
};

// The fixed denominator of a resource's exact cost: a price is in
// micro-units per hour (per GB-hour for memory, 1 GB = 1024 MB), the
// multiplier in millionths, the usage in nanoseconds.
u128 denominator(Resource r);

// Adds `quantity` unit-ns at `rate` (price micro-units per hour × multiplier
// ppm) to `line`, carrying the remainder exactly. Returns the micro-units by
// which line.cost_micros grew. The caller guarantees that the cost fits an
// int64 (Ledger::charge checks cost_bound before any line changes); a bigger
// one is a bug, not an input.
int64_t add_usage(Line& line, Resource r, u128 quantity, u128 rate);

// A piece of a usage on one ledger line.
struct Charge {
  std::string key;  // LineKey::encode() of its line
  Resource resource = Resource::kGpu;
  uint32_t day = 0;
  u128 quantity = 0;
  u128 rate = 0;
  bool unpriced = false;  // a GPU type the card does not price (charged 0)
};

// Splits a usage at UTC midnights (hence at price-period dates) into one
// charge per resource held and per day. InvalidArgument names what is wrong
// with a malformed usage (which is then not charged).
Status split_usage(const Usage& u, const RateCard& card, std::vector<Charge>* out);

// Key of an account's spend in a month (Ledger::spent).
std::string spend_key(std::string_view account, uint32_t month);

// The ledger's working set: lines and monthly spends read through on first
// use, changed in memory, and handed to the caller to persist (drain).
class Ledger {
 public:
  // Reads a stored value (nullopt: none yet).
  using Reader = std::function<std::optional<std::string>(std::string_view key)>;
  Ledger(Reader lines, Reader spends);

  struct Charged {
    int64_t cost_micros = 0;
    bool unpriced = false;
  };
  // Charges one usage. Refused (InvalidArgument) when it is malformed.
  Result<Charged> charge(const Usage& u, const RateCard& card);

  // Books an amount already priced (cloud node time, core/cloud_meter.h) on
  // the GPU line {account, day, user, job, gpu_type}; its spend grows with it.
  // InvalidArgument when the amount is negative or a total would overflow.
  Status book(std::string_view account, uint32_t day, std::string_view user, uint64_t job, std::string_view gpu_type,
              u128 quantity, int64_t micros);

  // An account's spend in a month (micro-units), changes included.
  int64_t spent(std::string_view account, uint32_t month);

  struct Changes {
    std::vector<std::pair<std::string, std::string>> lines;   // key, Line::encode()
    std::vector<std::pair<std::string, int64_t>> spends;      // spend_key, micro-units
    std::vector<std::pair<uint64_t, std::string>> new_jobs;   // job, account
  };
  // Everything changed since the last drain; afterwards nothing is changed.
  Changes drain();
  // Forgets cached (unchanged) entries once more than `max` lines are held.
  void trim_cache(size_t max);
  size_t cached_lines() const { return lines_.size(); }

 private:
  struct LineEntry {
    Line line;
    bool dirty = false;
  };
  struct SpendEntry {
    int64_t micros = 0;
    bool dirty = false;
  };
  std::pair<const std::string, SpendEntry>& spend_entry(const std::string& key);

  Reader read_line_;
  Reader read_spend_;
  std::unordered_map<std::string, LineEntry> lines_;
  std::unordered_map<std::string, SpendEntry> spends_;
  std::vector<std::pair<const std::string, LineEntry>*> dirty_lines_;
  std::vector<std::pair<const std::string, SpendEntry>*> dirty_spends_;
  std::unordered_set<uint64_t> known_jobs_;
  std::vector<std::pair<uint64_t, std::string>> new_jobs_;
  std::vector<Charge> scratch_;
};

}  // namespace trainyard::billing
