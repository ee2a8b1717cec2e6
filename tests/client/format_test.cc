// What ty shows: money without floating-point drift, Slurm-style durations,
// dates, state names, tables and the terminal plot.
#define BOOST_TEST_MODULE client_format
#include <boost/test/unit_test.hpp>

#include "format.h"

using namespace trainyard;
using namespace trainyard::ty;

BOOST_AUTO_TEST_CASE(money_is_exact_in_both_directions) {
  BOOST_TEST(format_money(0) == "0.00");
  BOOST_TEST(format_money(12'345'678) == "12.345678");
  BOOST_TEST(format_money(12'300'000) == "12.30");
  BOOST_TEST(format_money(-1'500'000) == "-1.50");
  BOOST_TEST(format_money(1) == "0.000001");
  int64_t m = 0;
  BOOST_TEST(parse_money("500", &m));
  BOOST_TEST(m == 500'000'000);
  BOOST_TEST(parse_money("499.99", &m));
  BOOST_TEST(m == 499'990'000);
  BOOST_TEST(parse_money("0.000001", &m));
  BOOST_TEST(m == 1);
  BOOST_TEST(parse_money(".5", &m));
  BOOST_TEST(m == 500'000);
  for (auto bad : {"", ".", "1.0000001", "-5", "1e3", "12a", "1,000"}) BOOST_TEST(!parse_money(bad, &m), bad);
}

BOOST_AUTO_TEST_CASE(durations_look_like_slurm) {
  BOOST_TEST(format_duration(0) == "0:00");
  BOOST_TEST(format_duration(65) == "1:05");
  BOOST_TEST(format_duration(3 * 3600 + 4 * 60 + 5) == "3:04:05");
  BOOST_TEST(format_duration(2 * 86400 + 3 * 3600 + 4 * 60 + 5) == "2-03:04:05");
}

BOOST_AUTO_TEST_CASE(dates_are_utc) {
  int64_t ns = 0;
  BOOST_TEST(parse_date("1970-01-02", &ns));
  BOOST_TEST(ns == 86'400'000'000'000);
  BOOST_TEST(parse_date("2026-11-01T08:30", &ns));
  int64_t day = 0;
  BOOST_TEST(parse_date("2026-11-01", &day));
  BOOST_TEST(ns - day == (8 * 3600 + 30 * 60) * 1'000'000'000LL);
  for (auto bad : {"", "2026-13-01", "yesterday", "2026-11", "2026-11-01X"}) BOOST_TEST(!parse_date(bad, &ns), bad);
}

BOOST_AUTO_TEST_CASE(state_names_round_trip) {
  for (auto s : fb::EnumValuesJobState()) {
    fb::JobState back;
    BOOST_TEST(parse_state(state_name(s), &back));
    BOOST_TEST((back == s));
  }
  BOOST_TEST(state_name(fb::JobState::TimedOut) == "timed_out");
  fb::JobState s;
  BOOST_TEST(parse_state("TIMED-OUT", &s));
  BOOST_TEST((s == fb::JobState::TimedOut));
  BOOST_TEST(!parse_state("sleeping", &s));
  // The schema's spelling, which REST used to print, still reads.
  BOOST_TEST(parse_state("TimedOut", &s));
  BOOST_TEST((s == fb::JobState::TimedOut));
  BOOST_TEST(state_name(fb::JobState::NodeFailure) == "node_failure");
}

BOOST_AUTO_TEST_CASE(tables_align_columns) {
  Table t({"A", "LONGER"});
  t.add({"x", "1"});
  t.add({"wide cell", "2"});
  BOOST_TEST(t.render() == "A          LONGER\nx          1\nwide cell  2\n");
}

BOOST_AUTO_TEST_CASE(the_plot_spans_the_range_and_labels_its_extremes) {
  std::vector<int64_t> steps;
  std::vector<double> values;
  for (int i = 0; i <= 100; ++i) {
    steps.push_back(i * 10);
    values.push_back(i == 50 ? 9.5 : 1.0);  // one spike in the middle
  }
  auto plot = render_plot(steps, values, 40, 8);
  std::vector<std::string> lines;
  for (size_t start = 0; start < plot.size();) {
    auto nl = plot.find('\n', start);
    lines.push_back(plot.substr(start, nl - start));
    start = nl + 1;
  }
  BOOST_REQUIRE(lines.size() == 9u);  // 8 rows + the step axis
  BOOST_TEST(lines[0].rfind(" 9.5 ┤", 0) == 0u, lines[0]);  // labels right-aligned to the widest
  BOOST_TEST(lines[4].rfind("5.25 ┤", 0) == 0u, lines[4]);
  BOOST_TEST(lines[7].rfind("   1 ┤", 0) == 0u, lines[7]);
  BOOST_TEST(lines[8].find("step 0") != std::string::npos);
  BOOST_TEST(lines[8].find("1000") != std::string::npos);
  // The top row holds the spike: some dot drawn there, near the middle.
  std::string top = lines[0].substr(lines[0].find("┤") + 3);
  BOOST_TEST(top != std::string(40, ' '));
  BOOST_TEST(top.find_first_not_of("\xE2\xA0\x80") != std::string::npos);  // not all blank braille
  BOOST_TEST(render_plot({}, {}, 40, 8) == "(no points)\n");
  BOOST_TEST(!render_plot({5}, {2.0}, 40, 8).empty());  // one point, flat range
}

BOOST_AUTO_TEST_CASE(since_takes_an_age_or_a_date) {
  const int64_t now = 1'800'000'000'000'000'000;
  int64_t ns = 0;
  BOOST_TEST(parse_time_or_age("now", now, &ns));
  BOOST_TEST(ns == now);
  BOOST_TEST(parse_time_or_age("90s", now, &ns));
  BOOST_TEST(ns == now - 90'000'000'000);
  BOOST_TEST(parse_time_or_age("12h", now, &ns));
  BOOST_TEST(ns == now - 12 * 3'600'000'000'000);
  BOOST_TEST(parse_time_or_age("2w", now, &ns));
  BOOST_TEST(ns == now - 14 * 86'400'000'000'000);
  BOOST_TEST(parse_time_or_age("2026-11-03", now, &ns));
  BOOST_TEST(ns == 1'793'664'000'000'000'000);
  for (auto bad : {"", "h", "12", "12y", "-3h", "yesterday", "1.5h", "999999999w"}) {
    BOOST_TEST(!parse_time_or_age(bad, now, &ns), bad);
  }
}
