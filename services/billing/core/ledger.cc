#include "core/ledger.h"

#include <algorithm>

#include "calendar/calendar.h"
#include "money/money.h"
#include "storage/keys.h"

namespace trainyard::billing {

using storage::Key;
using storage::KeyReader;

std::string_view resource_name(Resource r) {
  switch (r) {
    case Resource::kGpu:
      return "gpu";
    case Resource::kCpu:
      return "cpu";
    case Resource::kMemory:
      return "memory";
  }
  return "?";
}

std::string LineKey::encode() const {
  return Key()
      .str(account)
      .u32(day)
      .str(user)
      .u64(job)
      .u32(static_cast<uint32_t>(resource))
      .str(gpu_type)
      .u32(period)
      .bytes();
}

std::optional<LineKey> LineKey::decode(std::string_view key) {
  try {
    KeyReader r(key);
    LineKey k;
    k.account = r.str();
    k.day = r.u32();
    k.user = r.str();
    k.job = r.u64();
    uint32_t res = r.u32();
    if (res > 2) return std::nullopt;
    k.resource = static_cast<Resource>(res);
    k.gpu_type = r.str();
    k.period = r.u32();
    return k;
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

namespace {

void put_u128(std::string& s, u128 v) {
  for (int i = 15; i >= 0; --i) s.push_back(static_cast<char>(static_cast<uint8_t>(v >> (i * 8))));
}
u128 get_u128(std::string_view s) {
  u128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

}  // namespace

std::string Line::encode() const {
  std::string s;
  s.reserve(40);
  put_u128(s, quantity);
  s.append(storage::encode_u64(static_cast<uint64_t>(cost_micros)));
  put_u128(s, remainder);
  return s;
}

std::optional<Line> Line::decode(std::string_view v) {
  if (v.size() != 40) return std::nullopt;
  Line l;
  l.quantity = get_u128(v.substr(0, 16));
  l.cost_micros = static_cast<int64_t>(storage::decode_u64(v.substr(16, 8)));
  l.remainder = get_u128(v.substr(24, 16));
  return l;
}

u128 denominator(Resource r) {
  u128 d = static_cast<u128>(kNsPerHour) * static_cast<u128>(kMicros);
  return r == Resource::kMemory ? d * 1024 : d;
}

int64_t add_usage(Line& line, Resource r, u128 quantity, u128 rate) {
  line.quantity += quantity;
  if (rate == 0 || quantity == 0) return 0;
  const u128 den = denominator(r);
  // remainder + q * rate must stay below 2^127: feed huge quantities in
  // chunks, which is exact because the remainder carries between them.
  const u128 max_q = ((~u128(0) >> 1) - den) / rate;
  int64_t added = 0;
  while (quantity > 0) {
    u128 q = std::min(quantity, max_q);
    quantity -= q;
    u128 total = line.remainder + q * rate;
    added += static_cast<int64_t>(total / den);
    line.remainder = total % den;
  }
  line.cost_micros += added;
  return added;
}

namespace {

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

Status split_usage(const Usage& u, const RateCard& card, std::vector<Charge>* out) {
  out->clear();
  if (u.start_ns < 0 || u.end_ns <= u.start_ns) {
    return Status::invalid("usage of job " + std::to_string(u.job) + " has an empty or negative interval [" +
                           std::to_string(u.start_ns) + ", " + std::to_string(u.end_ns) + ")");
  }
  if (u.end_ns - u.start_ns > kMaxTickNs) {
    return Status::invalid("usage of job " + std::to_string(u.job) + " spans more than 31 days");
  }
  if (u.gpus > kMaxTickGpus || u.cpus > kMaxTickCpus || u.memory_mb > kMaxTickMemoryMb) {
    return Status::invalid("usage of job " + std::to_string(u.job) + " claims more than one node can hold (" +
                           std::to_string(u.gpus) + " GPUs, " + std::to_string(u.cpus) + " CPUs, " +
                           std::to_string(u.memory_mb) + " MB)");
  }
  if (has_nul(u.account) || has_nul(u.user) || has_nul(u.gpu_type) || has_nul(u.partition)) {
    return Status::invalid("usage of job " + std::to_string(u.job) + " has a NUL byte in account, user, partition "
                           "or gpu_type");
  }
  for (int64_t t = u.start_ns; t < u.end_ns;) {
    uint32_t day = day_of(t);
    int64_t end = std::min(u.end_ns, day_start_ns(day + 1));
    u128 ns = static_cast<u128>(end - t);
    const PricePeriod& p = card.period_at(day);
    u128 mult = static_cast<u128>(RateCard::multiplier_ppm(p, u.partition));
    // The key parts every line of this day shares, then each line's own
    // (the layout of LineKey::encode).
    std::string prefix = Key().str(u.account).u32(day).str(u.user).u64(u.job).bytes();
    auto add = [&](Resource r, u128 units, u128 price, std::string_view gpu_type, bool unpriced) {
      Charge c;
      c.key.reserve(prefix.size() + gpu_type.size() + 9);
      c.key = prefix;
      c.key.append(Key().u32(static_cast<uint32_t>(r)).str(gpu_type).u32(p.from_day).bytes());
      c.resource = r;
      c.day = day;
      c.quantity = units * ns;
      c.rate = price * mult;
      c.unpriced = unpriced;
      out->push_back(std::move(c));
    };
    if (u.gpus > 0) {
      auto price = RateCard::gpu_price(p, u.gpu_type);
      add(Resource::kGpu, u.gpus, static_cast<u128>(price.value_or(0)), u.gpu_type, !price.has_value());
    }
    if (u.cpus > 0) add(Resource::kCpu, u.cpus, static_cast<u128>(p.cpu_core_hour), "", false);
    if (u.memory_mb > 0) add(Resource::kMemory, u.memory_mb, static_cast<u128>(p.memory_gb_hour), "", false);
    t = end;
  }
  return Status::success();
}

std::string spend_key(std::string_view account, uint32_t month) { return Key().str(account).u32(month).bytes(); }

Ledger::Ledger(Reader lines, Reader spends) : read_line_(std::move(lines)), read_spend_(std::move(spends)) {}

std::pair<const std::string, Ledger::SpendEntry>& Ledger::spend_entry(const std::string& key) {
  auto [it, inserted] = spends_.try_emplace(key);
  if (inserted) {
    if (auto v = read_spend_(key); v && v->size() == 8) it->second.micros = static_cast<int64_t>(storage::decode_u64(*v));
  }
  return *it;
}

namespace {

// An upper bound of what `charges` can add to any total, or nullopt when it
// does not fit comfortably in int64 (absurd prices times absurd usage).
std::optional<int64_t> cost_bound(const std::vector<Charge>& charges) {
  constexpr u128 kLimit = static_cast<u128>(INT64_MAX / 4);
  u128 bound = 0;
  for (const auto& c : charges) {
    u128 product;
    if (__builtin_mul_overflow(c.quantity, c.rate, &product)) return std::nullopt;
    bound += product / denominator(c.resource) + 1;
    if (bound > kLimit) return std::nullopt;
  }
  return static_cast<int64_t>(bound);
}

// a + b, or nullopt on signed overflow.
std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

}  // namespace

Result<Ledger::Charged> Ledger::charge(const Usage& u, const RateCard& card) {
  auto s = split_usage(u, card, &scratch_);
  if (!s) return s;
  // Checked before anything changes, so a refused tick leaves no trace.
  auto bound = cost_bound(scratch_);
  bool fits = bound.has_value();
  if (fits && !scratch_.empty()) {
    for (uint32_t day : {scratch_.front().day, scratch_.back().day})
      fits = fits && checked_add(spent(u.account, month_of_day(day)), *bound).has_value();
  }
  if (!fits) return Status::invalid("usage of job " + std::to_string(u.job) + " would cost more than a total can hold");
  Charged result;
  int64_t day_cost = 0;  // of the charges of one day, added to its month's spend at once
  for (size_t i = 0; i < scratch_.size(); ++i) {
    auto& c = scratch_[i];
    auto [it, inserted] = lines_.try_emplace(std::move(c.key));
    if (inserted) {
      if (auto v = read_line_(it->first)) {
        if (auto l = Line::decode(*v)) it->second.line = *l;
      }
    }
    int64_t added = add_usage(it->second.line, c.resource, c.quantity, c.rate);
    if (!it->second.dirty) {
      it->second.dirty = true;
      dirty_lines_.push_back(&*it);  // unordered_map nodes never move
    }
    result.cost_micros += added;
    result.unpriced |= c.unpriced;
    day_cost += added;
    bool last_of_day = i + 1 == scratch_.size() || scratch_[i + 1].day != c.day;
    if (last_of_day && day_cost != 0) {
      auto& sp = spend_entry(spend_key(u.account, month_of_day(c.day)));
      sp.second.micros += day_cost;
      if (!sp.second.dirty) {
        sp.second.dirty = true;
        dirty_spends_.push_back(&sp);
      }
    }
    if (last_of_day) day_cost = 0;
  }
  if (known_jobs_.insert(u.job).second) new_jobs_.emplace_back(u.job, std::string(u.account));
  return result;
}

int64_t Ledger::spent(std::string_view account, uint32_t month) {
  return spend_entry(spend_key(account, month)).second.micros;
}

Ledger::Changes Ledger::drain() {
  Changes c;
  c.lines.reserve(dirty_lines_.size());
  for (auto* e : dirty_lines_) {
    c.lines.emplace_back(e->first, e->second.line.encode());
    e->second.dirty = false;
  }
  dirty_lines_.clear();
  for (auto* e : dirty_spends_) {
    c.spends.emplace_back(e->first, e->second.micros);
    e->second.dirty = false;
  }
  dirty_spends_.clear();
  c.new_jobs = std::move(new_jobs_);
  new_jobs_.clear();
  return c;
}

void Ledger::trim_cache(size_t max) {
  if (lines_.size() <= max) return;
  // Changed entries must survive until drained; everything else is on disk.
  std::erase_if(lines_, [](const auto& kv) { return !kv.second.dirty; });
  std::erase_if(spends_, [](const auto& kv) { return !kv.second.dirty; });
  if (known_jobs_.size() > max) known_jobs_.clear();
}

}  // namespace trainyard::billing
