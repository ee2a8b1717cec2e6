// Unit tests of the billing core: exact money parsing, the rate card and its
// errors, pricing per resource and partition, splitting at price changes,
// exact totals, budgets, reports and estimates.
#define BOOST_TEST_MODULE billing_core
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

#include "core/budget.h"
#include "calendar/calendar.h"
#include "core/estimate.h"
#include "core/ledger.h"
#include "money/money.h"
#include "core/rate_card.h"
#include "core/report.h"
#include "storage/keys.h"

using namespace trainyard;
using namespace trainyard::billing;

namespace {

constexpr const char* kCard = R"(currency = "EUR"
[[period]]
from = 2026-01-01
cpu_core_hour = "0.04"
memory_gb_hour = "0.005"
[period.gpu_hour]
A100 = "2.50"
H100 = "4.00"
[period.partition_multiplier]
preemptible = "0.5"

[[period]]
from = 2026-07-01
[period.gpu_hour]
H100 = "3.20"
)";

RateCard card(const std::string& text = kCard) {
  auto c = RateCard::parse(text, "rates.toml");
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().message());
  return *c;
}

int64_t at(unsigned y, unsigned m, unsigned d, int64_t hours = 0) {
  return days_from_civil(y, m, d) * kNsPerDay + hours * kNsPerHour;
}

std::string error_of(const std::string& text) {
  auto c = RateCard::parse(text, "rates.toml");
  BOOST_REQUIRE(!c.ok());
  return c.status().message();
}

// A ledger backed by plain maps, as the shell backs it with RocksDB.
struct MapLedger {
  std::map<std::string, std::string> lines, spends;
  Ledger ledger{[this](std::string_view k) -> std::optional<std::string> {
                  auto it = lines.find(std::string(k));
                  if (it == lines.end()) return std::nullopt;
                  return it->second;
                },
                [this](std::string_view k) -> std::optional<std::string> {
                  auto it = spends.find(std::string(k));
                  if (it == spends.end()) return std::nullopt;
                  return it->second;
                }};
  void persist() {
    auto c = ledger.drain();
    for (auto& [k, v] : c.lines) lines[k] = v;
    for (auto& [k, v] : c.spends) spends[k] = std::string(storage::encode_u64(static_cast<uint64_t>(v)));
  }
  std::vector<std::pair<LineKey, Line>> all() {
    persist();
    std::vector<std::pair<LineKey, Line>> out;
    for (auto& [k, v] : lines) out.emplace_back(*LineKey::decode(k), *Line::decode(v));
    return out;
  }
};

Usage usage(int64_t start, int64_t end, uint32_t gpus, std::string_view type = "A100", uint32_t cpus = 0,
            uint64_t memory_mb = 0, std::string_view partition = "batch") {
  Usage u;
  u.account = "vision";
  u.user = "ada";
  u.partition = partition;
  u.gpu_type = type;
  u.job = 7;
  u.gpus = gpus;
  u.cpus = cpus;
  u.memory_mb = memory_mb;
  u.start_ns = start;
  u.end_ns = end;
  return u;
}

}  // namespace

BOOST_AUTO_TEST_CASE(decimal_amounts_parse_exactly_and_bad_ones_are_refused) {
  BOOST_TEST(*parse_millionths("2.50", 1000) == 2'500'000);
  BOOST_TEST(*parse_millionths("3", 1000) == 3'000'000);
  BOOST_TEST(*parse_millionths("0.000001", 1000) == 1);
  BOOST_TEST(*parse_millionths("0.1", 1000) == 100'000);  // no binary rounding
  for (const char* bad : {"2.5000001", "-1", "1e3", ".5", "2.", "", "1,5", "1001"}) {
    BOOST_TEST(!parse_millionths(bad, 1000).ok(), bad);
  }
  BOOST_TEST(format_micros(2'500'000) == "2.50");
  BOOST_TEST(format_micros(1) == "0.000001");
}

BOOST_AUTO_TEST_CASE(calendar_days_and_months_round_trip) {
  BOOST_TEST(format_day(static_cast<uint32_t>(days_from_civil(2026, 11, 3))) == "2026-11-03");
  BOOST_TEST(*parse_day("2024-02-29") == days_from_civil(2024, 2, 29));
  BOOST_TEST(!parse_day("2026-02-29").has_value());
  BOOST_TEST(month_of(at(2026, 12, 31, 23)) == 202612u);
  BOOST_TEST(month_end_day(202612) == days_from_civil(2027, 1, 1));
  BOOST_TEST(*parse_month("2026-11") == 202611u);
  BOOST_TEST(!parse_month("2026-13").has_value());
}

BOOST_AUTO_TEST_CASE(rate_card_periods_carry_over_what_they_do_not_list) {
  auto c = card();
  BOOST_TEST(c.currency() == "EUR");
  BOOST_REQUIRE(c.periods().size() == 2u);
  auto& june = c.period_at(day_of(at(2026, 6, 30)));
  auto& july = c.period_at(day_of(at(2026, 7, 1)));
  BOOST_TEST(*RateCard::gpu_price(june, "H100") == 4'000'000);
  BOOST_TEST(*RateCard::gpu_price(july, "H100") == 3'200'000);
  BOOST_TEST(*RateCard::gpu_price(july, "A100") == 2'500'000);  // carried over
  BOOST_TEST(july.cpu_core_hour == 40'000);
  BOOST_TEST(RateCard::multiplier_ppm(july, "preemptible") == 500'000);
  BOOST_TEST(RateCard::multiplier_ppm(july, "batch") == 1'000'000);
  BOOST_TEST(!RateCard::gpu_price(july, "L4").has_value());
  // Before the first date: the first period's prices.
  BOOST_TEST(*RateCard::gpu_price(c.period_at(day_of(at(2025, 1, 1))), "H100") == 4'000'000);
}

BOOST_AUTO_TEST_CASE(rate_card_errors_name_the_file_and_line) {
  auto e = error_of("[[period]]\ncpu_core_hour = \"0.04\"\n[period.gpu_hour]\nA100 = 2.5\n");
  BOOST_TEST(e.find("rates.toml line 4") != std::string::npos, e);
  BOOST_TEST(e.find("A100") != std::string::npos, e);
  BOOST_TEST(e.find("decimal strings") != std::string::npos, e);

  e = error_of("[[period]]\ncpu_core_hour = \"0.04\"\ncpu_hour = \"1\"\n");
  BOOST_TEST(e.find("rates.toml line 3") != std::string::npos, e);
  BOOST_TEST(e.find("cpu_hour: unknown key") != std::string::npos, e);

  e = error_of("[[period]]\nfrom = 2026-07-01\n[[period]]\nfrom = 2026-01-01\n");
  BOOST_TEST(e.find("rates.toml line 4") != std::string::npos, e);
  BOOST_TEST(e.find("date order") != std::string::npos, e);

  e = error_of("[[period]]\ncpu_core_hour = \"0.04\"\n\n[[period]]\ncpu_core_hour = \"0.05\"\n");
  BOOST_TEST(e.find("needs a 'from' date") != std::string::npos, e);

  e = error_of("[[period]]\nmemory_gb_hour = \"0.0000001\"\n");
  BOOST_TEST(e.find("rates.toml line 2") != std::string::npos, e);
  BOOST_TEST(e.find("more than 6 decimals") != std::string::npos, e);

  e = error_of("[[period]]\n[period.partition_multiplier]\nspot = \"101\"\n");
  BOOST_TEST(e.find("rates.toml line 3") != std::string::npos, e);

  e = error_of("[[period]]\ncpu_core_hour = \"0.04\n");  // TOML syntax
  BOOST_TEST(e.find("rates.toml line 2") != std::string::npos, e);

  e = error_of("currency = \"EUR\"\n");
  BOOST_TEST(e.find("no [[period]]") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(each_resource_is_priced_and_the_partition_multiplier_applies) {
  auto c = card();
  MapLedger m;
  int64_t t0 = at(2026, 3, 10, 9);
  // One hour: 2 A100, 8 cores, 16 GB, in the half-price partition.
  auto r = m.ledger.charge(usage(t0, t0 + kNsPerHour, 2, "A100", 8, 16 * 1024, "preemptible"), c);
  BOOST_REQUIRE(r.ok());
  // 2 × 2.50 × 0.5 + 8 × 0.04 × 0.5 + 16 × 0.005 × 0.5 = 2.50 + 0.16 + 0.04
  BOOST_TEST(r->cost_micros == 2'700'000);
  std::map<Resource, int64_t> by;
  for (auto& [k, l] : m.all()) by[k.resource] += l.cost_micros;
  BOOST_TEST(by[Resource::kGpu] == 2'500'000);
  BOOST_TEST(by[Resource::kCpu] == 160'000);
  BOOST_TEST(by[Resource::kMemory] == 40'000);
  BOOST_TEST(m.ledger.spent("vision", 202603) == 2'700'000);
  // Full price elsewhere.
  auto full = m.ledger.charge(usage(t0, t0 + kNsPerHour, 2, "A100", 8, 16 * 1024, "batch"), c);
  BOOST_TEST(full->cost_micros == 5'400'000);
}

BOOST_AUTO_TEST_CASE(usage_spanning_a_price_change_is_split_at_the_date) {
  auto c = card();
  MapLedger m;
  // 23:00 on June 30th to 01:00 on July 1st on 1 H100: 1 h at 4.00, 1 h at 3.20.
  int64_t start = at(2026, 6, 30, 23);
  auto r = m.ledger.charge(usage(start, start + 2 * kNsPerHour, 1, "H100"), c);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->cost_micros == 7'200'000);
  auto lines = m.all();
  BOOST_REQUIRE(lines.size() == 2u);
  BOOST_TEST(lines[0].first.period == days_from_civil(2026, 1, 1));
  BOOST_TEST(lines[0].second.cost_micros == 4'000'000);
  BOOST_TEST(static_cast<uint64_t>(lines[0].second.quantity) == static_cast<uint64_t>(kNsPerHour));
  BOOST_TEST(lines[1].first.period == days_from_civil(2026, 7, 1));
  BOOST_TEST(lines[1].second.cost_micros == 3'200'000);
  // Each month's spend got its own part.
  BOOST_TEST(m.ledger.spent("vision", 202606) == 4'000'000);
  BOOST_TEST(m.ledger.spent("vision", 202607) == 3'200'000);
}

BOOST_AUTO_TEST_CASE(a_line_costs_the_floor_of_its_exact_cost_and_totals_are_sums_of_lines) {
  auto c = card("[[period]]\ncpu_core_hour = \"0.033333\"\nmemory_gb_hour = \"0.000777\"\n"
                "[period.gpu_hour]\nA100 = \"2.345678\"\n[period.partition_multiplier]\nspot = \"0.333333\"\n");
  MapLedger m;
  std::mt19937_64 rng(42);
  int64_t t = at(2026, 3, 10, 1);
  u128 gpu_ns = 0, cpu_ns = 0, mem_ns = 0;
  int64_t charged = 0;
  for (int i = 0; i < 5000; ++i) {
    int64_t d = static_cast<int64_t>(rng() % 5'000'000'000) + 1;  // any ns length, up to 5 s
    auto r = m.ledger.charge(usage(t, t + d, 3, "A100", 5, 12345, "spot"), c);
    BOOST_REQUIRE(r.ok());
    charged += r->cost_micros;
    gpu_ns += static_cast<u128>(3) * static_cast<u128>(d);
    cpu_ns += static_cast<u128>(5) * static_cast<u128>(d);
    mem_ns += static_cast<u128>(12345) * static_cast<u128>(d);
    t += d;
    if (i % 777 == 0) m.persist();  // a "restart" boundary changes nothing
  }
  auto lines = m.all();
  BOOST_REQUIRE(lines.size() == 3u);  // one day, one job: one line per resource
  // Independently: floor(quantity × price × multiplier / denominator).
  u128 hour_micros = static_cast<u128>(kNsPerHour) * 1'000'000;
  int64_t expect_gpu = static_cast<int64_t>(gpu_ns * 2'345'678 * 333'333 / hour_micros);
  int64_t expect_cpu = static_cast<int64_t>(cpu_ns * 33'333 * 333'333 / hour_micros);
  int64_t expect_mem = static_cast<int64_t>(mem_ns * 777 * 333'333 / (hour_micros * 1024));
  int64_t sum = 0;
  for (auto& [k, l] : lines) {
    int64_t expect = k.resource == Resource::kGpu ? expect_gpu : k.resource == Resource::kCpu ? expect_cpu : expect_mem;
    BOOST_TEST(l.cost_micros == expect, resource_name(k.resource));
    BOOST_TEST((l.remainder < denominator(k.resource)));
    sum += l.cost_micros;
  }
  BOOST_TEST(sum == charged);
  BOOST_TEST(m.ledger.spent("vision", 202603) == sum);
  UsageReport rep(GroupBy::kResource);
  InvoiceBuilder inv;
  for (auto& [k, l] : lines) {
    rep.add(k, l);
    inv.add(k, l);
  }
  int64_t rows = 0;
  for (auto& r : rep.rows()) rows += r.cost_micros;
  BOOST_TEST(rows == sum);
  BOOST_TEST(inv.total_micros() == sum);
}

BOOST_AUTO_TEST_CASE(huge_quantities_are_charged_exactly_without_overflow) {
  Line a, b;
  u128 rate = static_cast<u128>(1'000'000'000'000) * 100'000'000;  // the card's maximum price × multiplier
  // q × rate overflows 127 bits, so add_usage must feed it in chunks; the
  // cost itself (about 1.2e17 micros) still fits the int64 a line holds.
  // Bigger costs never reach add_usage: Ledger::charge refuses them first.
  u128 q = static_cast<u128>(1) << 62;
  BOOST_REQUIRE(q > ((~u128(0) >> 1) / rate));
  int64_t added = add_usage(a, Resource::kMemory, q, rate);
  add_usage(b, Resource::kMemory, q / 2, rate);
  add_usage(b, Resource::kMemory, q - q / 2, rate);
  BOOST_TEST(a.cost_micros == b.cost_micros);
  BOOST_TEST(added == a.cost_micros);
  BOOST_TEST((a.remainder == b.remainder));
}

// Found by fuzz_ledger under UBSan: a tick in the last day int64
// nanoseconds reach (2262-04-11) asked for the start of the next day, which
// overflowed. It is charged up to its end like any other.
BOOST_AUTO_TEST_CASE(usage_in_the_last_representable_day_is_split_without_overflow) {
  auto c = card();
  std::vector<Charge> out;
  int64_t end = INT64_MAX - 10;
  BOOST_REQUIRE(split_usage(usage(end - kNsPerHour, end, 1, "A100", 1), c, &out).ok());
  BOOST_REQUIRE(!out.empty());
  BOOST_TEST(static_cast<uint64_t>(out[0].quantity) == static_cast<uint64_t>(kNsPerHour));
  BOOST_TEST(day_start_ns(day_of(INT64_MAX) + 1) == INT64_MAX);
}

BOOST_AUTO_TEST_CASE(usage_is_split_per_day_and_malformed_usage_is_refused) {
  auto c = card();
  std::vector<Charge> out;
  int64_t start = at(2026, 3, 10, 22);
  BOOST_REQUIRE(split_usage(usage(start, start + 3 * kNsPerHour, 1, "A100", 2), c, &out).ok());
  BOOST_REQUIRE(out.size() == 4u);  // gpu + cpu, two days
  BOOST_TEST(out[0].day + 1 == out[2].day);
  BOOST_TEST((LineKey::decode(out[0].key)->resource == Resource::kGpu));
  BOOST_TEST(static_cast<uint64_t>(out[0].quantity) == static_cast<uint64_t>(2 * kNsPerHour));
  BOOST_TEST(static_cast<uint64_t>(out[2].quantity) == static_cast<uint64_t>(kNsPerHour));
  BOOST_TEST(!split_usage(usage(start, start, 1), c, &out).ok());
  BOOST_TEST(!split_usage(usage(start, start - 1, 1), c, &out).ok());
  auto bad = usage(start, start + 1, 1);
  std::string nul("a\0b", 3);
  bad.account = nul;
  BOOST_TEST(!split_usage(bad, c, &out).ok());
  // A GPU type the card does not price is charged 0 and flagged.
  BOOST_REQUIRE(split_usage(usage(start, start + 1, 1, "TPU"), c, &out).ok());
  BOOST_TEST(out[0].unpriced);
}

BOOST_AUTO_TEST_CASE(keys_and_values_round_trip) {
  LineKey k{"vision", 20000, "ada", 42, Resource::kGpu, "A100", 19000};
  auto d = LineKey::decode(k.encode());
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(d->account == "vision");
  BOOST_TEST(d->job == 42u);
  BOOST_TEST(d->gpu_type == "A100");
  BOOST_TEST(d->period == 19000u);
  Line l{static_cast<u128>(1) << 100, 123, 77};
  auto dl = Line::decode(l.encode());
  BOOST_TEST((dl->quantity == l.quantity && dl->cost_micros == 123 && dl->remainder == 77));
  AccountState s;
  s.budget = Budget{500'000'000, 80, true, true};
  s.blocked = true;
  s.blocked_month = 202611;
  auto ds = AccountState::decode(s.encode());
  BOOST_TEST((ds->budget->monthly_micros == 500'000'000 && ds->budget->hard && ds->blocked && ds->blocked_month == 202611u));
}

BOOST_AUTO_TEST_CASE(budget_warns_at_the_soft_limit_blocks_at_the_hard_one_and_lifts_when_raised) {
  AccountState s;
  s.budget = Budget{100'000'000, 80, true, false};
  BOOST_TEST(evaluate_budget("vision", s, 202611, 79'999'999).empty());
  auto e = evaluate_budget("vision", s, 202611, 80'000'000);
  BOOST_REQUIRE(e.size() == 1u);
  BOOST_TEST((e[0].kind == AccountEvent::Kind::kWarning));
  BOOST_TEST(e[0].limit_micros == 80'000'000);
  BOOST_TEST(evaluate_budget("vision", s, 202611, 90'000'000).empty());  // once a month
  BOOST_TEST(evaluate_budget("vision", s, 202611, 99'999'999).empty());
  e = evaluate_budget("vision", s, 202611, 100'000'000);
  BOOST_REQUIRE(e.size() == 1u);
  BOOST_TEST((e[0].kind == AccountEvent::Kind::kBlocked && e[0].blocked));
  BOOST_TEST(e[0].spent_micros == 100'000'000);
  BOOST_TEST(evaluate_budget("vision", s, 202611, 120'000'000).empty());  // already blocked
  // Raised: unblocked.
  s.budget->monthly_micros = 200'000'000;
  e = evaluate_budget("vision", s, 202611, 120'000'000);
  BOOST_REQUIRE(e.size() == 1u);
  BOOST_TEST((e[0].kind == AccountEvent::Kind::kBlocked && !e[0].blocked));
  // Lowered below the spend: warned again (the raise re-armed it) and blocked.
  s.budget->monthly_micros = 100'000'000;
  BOOST_TEST(evaluate_budget("vision", s, 202611, 120'000'000).size() == 2u);
  // A new month: unblocked, and a fresh warning can come.
  e = evaluate_budget("vision", s, 202612, 0);
  BOOST_REQUIRE(e.size() == 1u);
  BOOST_TEST((!e[0].blocked && e[0].month == 202612u));
  BOOST_TEST(evaluate_budget("vision", s, 202612, 85'000'000).size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_soft_budget_never_blocks_and_removing_a_budget_unblocks) {
  AccountState s;
  s.budget = Budget{100, 0, false, false};
  BOOST_TEST(evaluate_budget("a", s, 202611, 1000).empty());  // no warning (0 %), no block (soft)
  s.budget = Budget{100, 50, true, true};
  auto e = evaluate_budget("a", s, 202611, 1000);
  BOOST_REQUIRE(e.size() == 2u);
  BOOST_TEST((e[1].blocked && e[1].stop_running));
  s.budget.reset();
  e = evaluate_budget("a", s, 202611, 1000);
  BOOST_REQUIRE(e.size() == 1u);
  BOOST_TEST(!e[0].blocked);
}

BOOST_AUTO_TEST_CASE(estimate_is_the_time_limit_at_current_prices) {
  auto c = card();
  JobShape j;
  j.gpu_type = "A100";
  j.gpus_per_node = 4;
  j.cpus = 16;
  j.memory_mb = 64 * 1024;
  j.nodes = 2;
  j.time_limit_s = 10 * 3600;
  // 2 nodes × 10 h × (4 × 2.50 + 16 × 0.04 + 64 × 0.005) = 20 × 10.96
  BOOST_TEST(*estimate_cost(j, c, day_of(at(2026, 3, 1))) == 219'200'000);
  j.partition = "preemptible";
  BOOST_TEST(*estimate_cost(j, c, day_of(at(2026, 3, 1))) == 109'600'000);
  j.partition = "";
  j.gpu_type = "H100";
  j.cpus = 0;  // counts as one core
  j.memory_mb = 0;
  BOOST_TEST(*estimate_cost(j, c, day_of(at(2026, 8, 1))) == 20 * (4 * 3'200'000 + 40'000));
  j.time_limit_s = 0;
  BOOST_TEST(!estimate_cost(j, c, 0).ok());
}

BOOST_AUTO_TEST_CASE(reports_group_whole_lines) {
  auto c = card();
  MapLedger m;
  int64_t t = at(2026, 3, 10, 12);
  auto u = usage(t, t + kNsPerHour, 1, "A100", 1);
  BOOST_REQUIRE(m.ledger.charge(u, c).ok());
  u.user = "bob";
  u.job = 8;
  u.start_ns += kNsPerDay;
  u.end_ns += kNsPerDay;
  BOOST_REQUIRE(m.ledger.charge(u, c).ok());
  auto lines = m.all();
  UsageReport by_user(GroupBy::kUser), by_day(GroupBy::kDay), by_res(GroupBy::kResource);
  UsageFilter only_bob;
  only_bob.user = "bob";
  UsageReport bob(GroupBy::kJob);
  for (auto& [k, l] : lines) {
    by_user.add(k, l);
    by_day.add(k, l);
    by_res.add(k, l);
    if (only_bob.matches(k)) bob.add(k, l);
  }
  BOOST_REQUIRE(by_user.rows().size() == 2u);
  BOOST_TEST(by_user.rows()[0].key == "ada");
  BOOST_TEST(by_user.rows()[0].cost_micros == 2'540'000);
  BOOST_TEST(to_ms(by_user.rows()[0].gpu_ns) == 3'600'000u);
  BOOST_TEST(by_day.rows()[1].key == "2026-03-11");
  BOOST_TEST(by_res.rows()[0].key == "gpu:A100");
  BOOST_TEST(by_res.rows()[0].cost_micros == 5'000'000);
  BOOST_REQUIRE(bob.rows().size() == 1u);
  BOOST_TEST(bob.rows()[0].key == "8");
  auto f = UsageFilter::from_period(at(2026, 3, 11, 1), 0);
  BOOST_TEST(!f.matches(lines[0].first));
  BOOST_TEST(parse_group_by("week").status().message().find("week") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(report_pages_resume_after_a_cursor_in_numeric_order) {
  auto c = card();
  MapLedger m;
  int64_t t = at(2026, 3, 10, 12);
  // Jobs 2, 9 and 10: numerically ordered, not as strings ("10" < "2").
  for (uint64_t job : {10u, 2u, 9u}) {
    auto u = usage(t, t + kNsPerHour, 1, "A100", 1);
    u.job = job;
    BOOST_REQUIRE(m.ledger.charge(u, c).ok());
  }
  UsageReport by_job(GroupBy::kJob);
  for (auto& [k, l] : m.all()) by_job.add(k, l);
  auto all = by_job.rows();
  BOOST_REQUIRE(all.size() == 3u);
  std::vector<std::string> keys;
  std::string cursor;
  for (int page = 0; page < 4; ++page) {
    auto rest = by_job.rows_after(cursor);
    BOOST_REQUIRE(rest.ok());
    if (rest->empty()) break;
    keys.push_back(rest->front().key);
    cursor = UsageReport::cursor(rest->front());
  }
  BOOST_TEST(keys == std::vector<std::string>({"2", "9", "10"}), "one row a page, in job order, none twice");
  for (std::string bad : {"x", "/2", "12", "99999999999999999999999/1", "1a/2"}) {
    auto r = by_job.rows_after(bad);
    BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument), bad);
    BOOST_TEST(r.status().message().find("QueryUsage.after") != std::string::npos);
  }
}
