#include "core/rate_card.h"

#include <algorithm>
#include <sstream>

#include <toml++/toml.h>

#include "calendar/calendar.h"
#include "money/money.h"

namespace trainyard::billing {
namespace {

class CardParser {
 public:
  explicit CardParser(std::string source) : source_(std::move(source)) {}

  Status error_at(const toml::node& n, const std::string& what) const {
    std::ostringstream os;
    os << source_ << " line " << n.source().begin.line << ": " << what;
    return Status::invalid(os.str());
  }

  // A price or multiplier: a decimal string or an integer, never a float.
  Result<int64_t> amount(const toml::node& n, const std::string& name, int64_t max_units) const {
    if (auto s = n.as_string()) {
      auto v = parse_millionths(s->get(), max_units);
      if (!v) return error_at(n, name + ": " + v.status().message());
      return v;
    }
    if (auto i = n.as_integer()) {
      if (i->get() < 0 || i->get() > max_units) {
        return error_at(n, name + ": " + std::to_string(i->get()) + " is outside 0.." + std::to_string(max_units));
      }
      return i->get() * kMicros;
    }
    if (n.is_floating_point()) {
      return error_at(n, name + ": write amounts as decimal strings (\"2.50\") or integers, not as TOML floats, so "
                                "they stay exact");
    }
    return error_at(n, name + ": expected a decimal string such as \"2.50\" or an integer");
  }

  Result<uint32_t> date(const toml::node& n, const std::string& name) const {
    if (auto d = n.as_date()) {
      auto v = d->get();
      return static_cast<uint32_t>(days_from_civil(v.year, v.month, v.day));
    }
    if (auto s = n.as_string()) {
      if (auto day = parse_day(s->get())) return *day;
    }
    return error_at(n, name + ": expected a date such as 2026-07-01 (UTC)");
  }

  Status period(const toml::table& t, const std::string& name, PricePeriod& p, bool first) const {
    for (auto&& [k, v] : t) {
      std::string key(k.str());
      std::string field = name + "." + key;
      if (key == "from") {
        auto d = date(v, field);
        if (!d) return d.status();
        p.from_day = *d;
      } else if (key == "cpu_core_hour" || key == "memory_gb_hour") {
        auto a = amount(v, field, RateCard::kMaxPriceUnits);
        if (!a) return a.status();
        (key == "cpu_core_hour" ? p.cpu_core_hour : p.memory_gb_hour) = *a;
      } else if (key == "gpu_hour" || key == "partition_multiplier") {
        auto* sub = v.as_table();
        if (!sub) return error_at(v, field + ": expected a table of " + (key == "gpu_hour" ? "GPU type" : "partition") +
                                         " = \"amount\"");
        bool gpu = key == "gpu_hour";
        for (auto&& [sk, sv] : *sub) {
          auto a = amount(sv, field + "." + std::string(sk.str()),
                          gpu ? RateCard::kMaxPriceUnits : RateCard::kMaxMultiplier);
          if (!a) return a.status();
          (gpu ? p.gpu_hour : p.partition_ppm)[std::string(sk.str())] = *a;
        }
      } else {
        return error_at(v, field + ": unknown key (expected from, cpu_core_hour, memory_gb_hour, gpu_hour, "
                                   "partition_multiplier)");
      }
    }
    if (!first && !t.contains("from")) {
      return error_at(t, name + ": every period after the first needs a 'from' date");
    }
    return Status::success();
  }

  Status card(const toml::table& root, std::string& currency, std::vector<PricePeriod>& periods) const {
    for (auto&& [k, v] : root) {
      std::string key(k.str());
      if (key == "currency") {
        auto s = v.as_string();
        if (!s || s->get().empty()) return error_at(v, "currency: expected a non-empty string such as \"EUR\"");
        currency = s->get();
      } else if (key == "period") {
        auto* arr = v.as_array();
        if (!arr || !arr->is_array_of_tables()) {
          return error_at(v, "period: write each price period as a [[period]] table");
        }
        for (size_t i = 0; i < arr->size(); ++i) {
          const auto& t = *arr->get(i)->as_table();
          // Each period starts as a copy of the previous one: only changes are listed.
          PricePeriod p = periods.empty() ? PricePeriod{} : periods.back();
          std::string name = "period[" + std::to_string(i + 1) + "]";
          auto s = period(t, name, p, periods.empty());
          if (!s) return s;
          if (!periods.empty() && p.from_day <= periods.back().from_day) {
            return error_at(*t.get("from"), name + ".from: " + format_day(p.from_day) +
                                                " is not after the previous period's " +
                                                format_day(periods.back().from_day) + "; list periods in date order");
          }
          periods.push_back(std::move(p));
        }
      } else {
        return error_at(v, key + ": unknown key (expected currency and [[period]] tables)");
      }
    }
    if (periods.empty()) {
      return Status::invalid(source_ + " line 1: the card has no [[period]] of prices; see rates.example.toml");
    }
    return Status::success();
  }

 private:
  std::string source_;
};

}  // namespace

Result<RateCard> RateCard::parse(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << " line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
       << e.description();
    return Status::invalid(os.str());
  }
  RateCard c;
  CardParser p(source);
  auto s = p.card(root, c.currency_, c.periods_);
  if (!s) return s;
  return c;
}

const PricePeriod& RateCard::period_at(uint32_t day) const {
  // The last period starting on or before `day`.
  auto it = std::upper_bound(periods_.begin(), periods_.end(), day,
                             [](uint32_t d, const PricePeriod& p) { return d < p.from_day; });
  return it == periods_.begin() ? periods_.front() : *(it - 1);
}

std::optional<int64_t> RateCard::gpu_price(const PricePeriod& p, std::string_view type) {
  auto it = p.gpu_hour.find(type);
  if (it == p.gpu_hour.end()) it = p.gpu_hour.find(kDefaultGpu);
  if (it == p.gpu_hour.end()) return std::nullopt;
  return it->second;
}

int64_t RateCard::multiplier_ppm(const PricePeriod& p, std::string_view partition) {
  auto it = p.partition_ppm.find(partition);
  return it == p.partition_ppm.end() ? kMicros : it->second;
}

}  // namespace trainyard::billing
