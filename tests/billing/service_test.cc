// Integration tests: the real trainyard-billing and trainyard-bus, fed by
// trainyard-billing-test-agent publishing usage ticks as a node agent does,
// queried over its ROUTER, killed with SIGKILL and restarted.
#define BOOST_TEST_MODULE billing_service
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <zmq.hpp>

#include "bus/event.h"
#include "process.h"
#include "util/service_main.h"
#include "rpc/client.h"
#include "trainyard/fb/bus_generated.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;
using u128 = unsigned __int128;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kHour = 3'600'000 * kMs;

// 2026-03-10T00:00:00Z in ns.
constexpr int64_t kMarch10 = 1773100800LL * 1'000'000'000;
// 2026-07-01T00:00:00Z in ns.
constexpr int64_t kJuly1 = 1782864000LL * 1'000'000'000;

struct Tick {
  uint64_t job = 1;
  std::string account = "vision", user = "ada", partition = "batch", gpu_type = "A100";
  uint32_t gpus = 0, cpus = 0;
  uint64_t memory_mb = 0;
  int64_t start_ns = 0, end_ns = 0;
  bool final = false;
};

void write_ticks(const std::string& path, const std::vector<Tick>& ticks) {
  std::ofstream out(path);
  for (auto& t : ticks) {
    out << nlohmann::json{{"job", t.job},           {"lease", t.job},         {"account", t.account},
                          {"user", t.user},         {"partition", t.partition}, {"gpu_type", t.gpu_type},
                          {"gpus", t.gpus},         {"cpus", t.cpus},         {"memory_mb", t.memory_mb},
                          {"start_ns", t.start_ns}, {"end_ns", t.end_ns},     {"final", t.final}}
               .dump()
        << "\n";
  }
}

// A job's ticks: [start, end) cut every `every_ns`, the last one final.
std::vector<Tick> job_ticks(Tick shape, int64_t start, int64_t end, int64_t every_ns) {
  std::vector<Tick> out;
  for (int64_t t = start; t < end; t += every_ns) {
    Tick k = shape;
    k.start_ns = t;
    k.end_ns = std::min(end, t + every_ns);
    k.final = k.end_ns == end;
    out.push_back(k);
  }
  return out;
}


// A bus, a billing service and the agents feeding it, in one temp dir.
struct Cluster {
  TempDir dir;
  zmq::context_t ctx{1};
  std::unique_ptr<Process> bus, billing;
  std::vector<std::unique_ptr<Process>> agents;
  std::string frontend, backend, endpoint;
  int starts = 0;

  Cluster() {
    auto started = start_bus(dir.path());
    bus = std::move(started.process);
    frontend = started.frontend;
    backend = started.backend;
  }

  std::vector<std::string> billing_argv(const std::string& rates) {
    return {bin("trainyard-billing"), "--set", "billing.endpoint=tcp://127.0.0.1:*", "--set",
            "billing.data=" + dir / "billing", "--set", "billing.rates=" + rates, "--set", "billing.currency=EUR",
            "--set", "billing.check_ms=200", "--set", "bus.frontend=" + frontend, "--set", "bus.backend=" + backend,
            "--ready-file", dir / "billing.ready"};
  }

  void start_billing(const std::string& rates) {
    std::remove((dir / "billing.ready").c_str());
    billing = std::make_unique<Process>(billing_argv(rates), dir / ("billing." + std::to_string(++starts) + ".log"));
    auto ready = wait_json(dir / "billing.ready", 15s);
    BOOST_REQUIRE_MESSAGE(ready.contains("endpoint"), billing->log());
    BOOST_REQUIRE(ready["pid"].get<int>() == billing->pid());
    endpoint = ready["endpoint"];
  }

  // Starts an agent publishing `ticks` as node `node`; returns its info path.
  std::string start_agent(const std::string& node, const std::vector<Tick>& ticks, double rate = 0,
                          int batch = 100) {
    write_ticks(dir / (node + ".jsonl"), ticks);
    std::string info = dir / (node + ".info");
    agents.push_back(std::make_unique<Process>(
        std::vector<std::string>{bin("trainyard-billing-test-agent"), "--data", dir / ("agent-" + node), "--bus",
                                 frontend, "--ticks", dir / (node + ".jsonl"), "--node", node, "--rate",
                                 std::to_string(rate), "--batch", std::to_string(batch), "--info", info},
        dir / (node + ".log")));
    return info;
  }

  rpc::Client client(const std::string& principal = "") {
    rpc::ClientOptions o;
    o.timeout_ms = 5000;
    o.principal = principal;
    return rpc::Client(ctx, "billing", endpoint, o);
  }

  Result<rpc::Reply> query(const std::string& account, uint64_t job, const std::string& group_by) {
    auto c = client();
    return c.call(fb::RequestBody::QueryUsage, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQueryUsageDirect(b, account.c_str(), "", job, 0, 0, group_by.c_str()).Union();
    });
  }

  // Rows of a QueryUsage as key -> (gpu_ms, cpu_ms, memory_mb_ms, cost).
  std::map<std::string, std::tuple<uint64_t, uint64_t, uint64_t, int64_t>> rows(const std::string& account,
                                                                                  uint64_t job,
                                                                                  const std::string& group_by) {
    std::map<std::string, std::tuple<uint64_t, uint64_t, uint64_t, int64_t>> out;
    auto r = query(account, job, group_by);
    if (!r) return out;
    auto* rep = r->body<fb::UsageReport>();
    if (!rep || !rep->rows()) return out;
    for (auto* row : *rep->rows()) {
      out[row->key()->str()] = {row->gpu_ms(), row->cpu_ms(), row->memory_mb_ms(), row->cost_micros()};
    }
    return out;
  }

  int64_t estimate(const std::string& gpu_type, uint32_t gpus, uint64_t seconds) {
    auto c = client();
    auto r = c.call(fb::RequestBody::EstimateCost, [&](flatbuffers::FlatBufferBuilder& b) {
      fb::JobSpecT spec;
      spec.gpu_type = gpu_type;
      spec.gpus_per_node = gpus;
      spec.time_limit_s = seconds;
      spec.nodes = 1;
      return fb::CreateEstimateCost(b, fb::JobSpec::Pack(b, &spec)).Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
    return r->body<fb::Estimate>()->cost_micros();
  }
};

constexpr const char* kSimpleCard = R"(currency = "EUR"
[[period]]
from = 2026-01-01
cpu_core_hour = "0.04"
memory_gb_hour = "0.005"
[period.gpu_hour]
A100 = "2.50"
H100 = "4.00"

[[period]]
from = 2026-07-01
[period.gpu_hour]
H100 = "3.20"
)";

}  // namespace

BOOST_AUTO_TEST_CASE(help_describes_the_service) {
  auto [rc, out] = run({bin("trainyard-billing"), "--help"});
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("--ready-file") != std::string::npos);
  BOOST_TEST(out.find("billing.rates") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_job_of_known_length_is_charged_to_the_millisecond_and_the_micro_unit) {
  Cluster c;
  write_file_atomic(c.dir / "rates.toml", kSimpleCard);
  c.start_billing(c.dir / "rates.toml");
  // 4 A100, 16 cores, 64 GB for 3 h 25 min 7.123 s, ticks every 10 s.
  const int64_t length_ms = (3 * 3600 + 25 * 60 + 7) * 1000 + 123;
  Tick shape;
  shape.job = 12;
  shape.gpus = 4;
  shape.cpus = 16;
  shape.memory_mb = 65536;
  int64_t start = kMarch10 + 8 * kHour;
  auto ticks = job_ticks(shape, start, start + length_ms * kMs, 10'000 * kMs);
  // Another account's job, which must not leak into this one.
  Tick other = shape;
  other.job = 13;
  other.account = "nlp";
  for (auto& t : job_ticks(other, start, start + kHour, 60'000 * kMs)) ticks.push_back(t);
  auto info = c.start_agent("node-1", ticks);

  // Expected, by hand: 4 × 12307123 GPU-ms at 2.50/h = 34186452.77 -> 34186452 micro-EUR;
  // 16 × 12307123 core-ms at 0.04/h -> 2187932; 64 GB × 12307123 ms at 0.005/h -> 1093966.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return c.rows("vision", 12, "resource").size() == 3; }, 20s),
                        c.billing->log());
  BOOST_REQUIRE(wait_until(
      [&] { return std::get<0>(c.rows("vision", 12, "resource")["gpu:A100"]) == 4u * length_ms; }, 20s));
  auto rows = c.rows("vision", 12, "resource");
  BOOST_TEST(std::get<0>(rows["gpu:A100"]) == 4u * length_ms);
  BOOST_TEST(std::get<3>(rows["gpu:A100"]) == 34'186'452);
  BOOST_TEST(std::get<1>(rows["cpu"]) == 16u * length_ms);
  BOOST_TEST(std::get<3>(rows["cpu"]) == 2'187'932);
  BOOST_TEST(std::get<2>(rows["memory"]) == 65536u * length_ms);
  BOOST_TEST(std::get<3>(rows["memory"]) == 1'093'966);

  // The job alone (no account given: found through its index).
  auto by_job = c.rows("", 12, "job");
  BOOST_TEST(std::get<3>(by_job["12"]) == 37'468'350);

  // The invoice: lines per user, resource and GPU type adding up to the total.
  auto client = c.client();
  auto r = client.call(fb::RequestBody::GetInvoice, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateGetInvoiceDirect(b, "vision", "2026-03").Union();
  });
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto* inv = r->body<fb::Invoice>();
  BOOST_TEST(inv->currency()->str() == "EUR");
  BOOST_TEST(inv->total_micros() == 37'468'350);
  BOOST_REQUIRE(inv->lines()->size() == 3u);
  int64_t sum = 0;
  for (auto* l : *inv->lines()) {
    BOOST_TEST(l->user()->str() == "ada");
    sum += l->cost_micros();
  }
  BOOST_TEST(sum == inv->total_micros());
  BOOST_TEST(inv->lines()->Get(0)->resource()->str() == "gpu");
  BOOST_TEST(inv->lines()->Get(0)->gpu_type()->str() == "A100");
  BOOST_TEST(inv->lines()->Get(0)->quantity_ms() == 4u * length_ms);

  // Bad requests are refused with the field named.
  auto bad = client.call(fb::RequestBody::GetInvoice, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateGetInvoiceDirect(b, "vision", "March").Union();
  });
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.status().message().find("GetInvoice.month") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_price_change_mid_job_splits_the_charge) {
  Cluster c;
  write_file_atomic(c.dir / "rates.toml", kSimpleCard);
  c.start_billing(c.dir / "rates.toml");
  // 2 H100 from June 30th 22:30 to July 1st 01:15 (UTC): 1.5 h at 4.00, 1.25 h at 3.20.
  Tick shape;
  shape.job = 40;
  shape.gpus = 2;
  shape.gpu_type = "H100";
  c.start_agent("node-1", job_ticks(shape, kJuly1 - 90 * 60'000 * kMs, kJuly1 + 75 * 60'000 * kMs, 7'000 * kMs));
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return std::get<3>(c.rows("vision", 40, "job")["40"]) == 20'000'000; }, 20s),
                        c.billing->log());
  auto days = c.rows("vision", 40, "day");
  BOOST_REQUIRE(days.size() == 2u);
  BOOST_TEST(std::get<3>(days["2026-06-30"]) == 2 * 1.5 * 4'000'000);
  BOOST_TEST(std::get<3>(days["2026-07-01"]) == 2 * 1.25 * 3'200'000);
  BOOST_TEST(std::get<0>(days["2026-06-30"]) == 2u * 90 * 60'000);
}

BOOST_AUTO_TEST_CASE(billing_killed_at_random_points_during_10000_ticks_ends_with_exact_totals) {
  Cluster c;
  write_file_atomic(c.dir / "rates.toml", R"([[period]]
cpu_core_hour = "0.033333"
memory_gb_hour = "0.000777"
[period.gpu_hour]
A100 = "2.345678"
H100 = "3.999999"
[period.partition_multiplier]
spot = "0.333333"
)");
  c.start_billing(c.dir / "rates.toml");

  // 20 jobs of 500 ticks each, interleaved, of random length in ns.
  std::mt19937_64 rng(20261125);
  std::vector<Tick> ticks;
  std::vector<Tick> shapes;
  for (uint64_t j = 0; j < 20; ++j) {
    Tick s;
    s.job = 100 + j;
    s.account = "acct-" + std::to_string(j % 3);
    s.user = "user-" + std::to_string(j % 4);
    s.partition = j % 2 ? "spot" : "batch";
    s.gpu_type = j % 5 ? "A100" : "H100";
    s.gpus = static_cast<uint32_t>(1 + j % 8);
    s.cpus = static_cast<uint32_t>(2 + j);
    s.memory_mb = 1000 + 777 * j;
    s.start_ns = kMarch10 + static_cast<int64_t>(j) * kHour;
    shapes.push_back(s);
  }
  struct Truth {
    u128 gpu = 0, cpu = 0, mem = 0;
  };
  std::map<uint64_t, Truth> truth;
  for (int i = 0; i < 10'000; ++i) {
    auto& s = shapes[static_cast<size_t>(i) % shapes.size()];
    Tick t = s;
    t.end_ns = t.start_ns + 1 + static_cast<int64_t>(rng() % 3'000'000'000);
    s.start_ns = t.end_ns;
    ticks.push_back(t);
    auto& tr = truth[t.job];
    u128 ns = static_cast<u128>(t.end_ns - t.start_ns);
    tr.gpu += t.gpus * ns;
    tr.cpu += t.cpus * ns;
    tr.mem += t.memory_mb * ns;
  }
  auto info = c.start_agent("node-7", ticks, 2500, 25);

  // Kill billing with SIGKILL at random moments while the ticks flow.
  int kills = 0;
  std::uniform_int_distribution<int> pause_ms(150, 700);
  while (kills < 6) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));  // chaos timing, not synchronisation
    c.billing->kill9();
    c.billing->wait(5s);
    ++kills;
    c.start_billing(c.dir / "rates.toml");
    auto j = read_json(info);
    if (j && (*j)["count"] == 10'000) break;
  }
  BOOST_TEST_MESSAGE("killed billing " << kills << " times");
  wait_json(info, 30s, [](const nlohmann::json& j) { return j["count"] == 10'000; });

  // Ground truth: one ledger line per job and resource (one day, one price
  // period), each floor(exact cost).
  const u128 den = static_cast<u128>(kHour) * 1'000'000;
  std::map<std::string, std::tuple<uint64_t, uint64_t, uint64_t, int64_t>> expect;
  for (auto& s : shapes) {
    auto& tr = truth[s.job];
    u128 mult = s.partition == "spot" ? 333'333 : 1'000'000;
    u128 gpu_price = s.gpu_type == "A100" ? 2'345'678 : 3'999'999;
    int64_t cost = static_cast<int64_t>(tr.gpu * gpu_price * mult / den) +
                   static_cast<int64_t>(tr.cpu * 33'333 * mult / den) +
                   static_cast<int64_t>(tr.mem * 777 * mult / (den * 1024));
    expect[std::to_string(s.job)] = {static_cast<uint64_t>(tr.gpu / kMs), static_cast<uint64_t>(tr.cpu / kMs),
                                     static_cast<uint64_t>(tr.mem / kMs), cost};
  }
  bool equal = wait_until([&] { return c.rows("", 0, "job") == expect; }, 30s);
  auto got = c.rows("", 0, "job");
  BOOST_REQUIRE(got.size() == expect.size());
  for (auto& [job, e] : expect) {
    BOOST_TEST(std::get<0>(got[job]) == std::get<0>(e), "gpu_ms of job " << job);
    BOOST_TEST(std::get<1>(got[job]) == std::get<1>(e), "cpu_ms of job " << job);
    BOOST_TEST(std::get<2>(got[job]) == std::get<2>(e), "memory_mb_ms of job " << job);
    BOOST_TEST(std::get<3>(got[job]) == std::get<3>(e), "cost of job " << job);
  }
  BOOST_TEST(equal);

  // And once more after a clean restart: nothing is applied twice.
  c.billing->stop();
  c.start_billing(c.dir / "rates.toml");
  std::this_thread::sleep_for(1500ms);  // let replays from the stored cursors run; nothing may change
  BOOST_TEST((c.rows("", 0, "job") == expect));
}

BOOST_AUTO_TEST_CASE(an_account_over_its_hard_budget_is_blocked_until_the_budget_is_raised) {
  Cluster c;
  write_file_atomic(c.dir / "rates.toml", kSimpleCard);
  c.start_billing(c.dir / "rates.toml");

  zmq::socket_t sub(c.ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "account.");
  sub.set(zmq::sockopt::rcvtimeo, 200);
  sub.connect(c.backend);
  struct Seen {
    std::string topic, account, month;
    int64_t spent, limit;
    bool blocked;
  };
  std::vector<Seen> seen;
  auto receive = [&] {
    zmq::message_t topic, body;
    while (sub.recv(topic, zmq::recv_flags::dontwait)) {
      (void)sub.recv(body);
      auto checked =
          bus::verify_event(topic.to_string_view(), {static_cast<const uint8_t*>(body.data()), body.size()});
      BOOST_REQUIRE_MESSAGE(checked.ok(), checked.status().message());
      const bus::Event& e = *checked;
      if (auto* w = e.as<fb::AccountWarning>()) {
        seen.push_back({topic.to_string(), w->account()->str(), w->month()->str(), w->spent_micros(),
                        w->limit_micros(), false});
      } else if (auto* b = e.as<fb::AccountBlocked>()) {
        seen.push_back({topic.to_string(), b->account()->str(), b->month()->str(), b->spent_micros(),
                        b->limit_micros(), b->blocked()});
      }
    }
    return seen.size();
  };

  auto set_budget = [&](int64_t micros, const std::string& principal = "") {
    auto client = c.client(principal);
    return client.call(fb::RequestBody::SetBudget, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateSetBudgetDirect(b, "vision", micros, 50, true, false).Union();
    });
  };
  auto denied = set_budget(10'000'000, "user:ada");
  BOOST_TEST((denied.status().code() == ErrorCode::PermissionDenied));
  BOOST_REQUIRE(set_budget(10'000'000).ok());  // 10 EUR a month, warn at 50 %, hard

  // 8 A100 for an hour this month: 20 EUR.
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto month_of = [](int64_t ns) { return std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(
                                       std::chrono::sys_time<std::chrono::nanoseconds>(std::chrono::nanoseconds(ns)))); };
  int64_t start = month_of(now + kHour).month() == month_of(now).month() ? now : now - kHour;
  Tick shape;
  shape.job = 77;
  shape.gpus = 8;
  c.start_agent("node-2", job_ticks(shape, start, start + kHour, 60'000 * kMs), 30, 1);

  BOOST_REQUIRE_MESSAGE(wait_until([&] { return receive() >= 2; }, 20s), c.billing->log());
  BOOST_TEST(seen[0].topic == "account.warning");
  BOOST_TEST(seen[0].account == "vision");
  BOOST_TEST(seen[0].spent >= 5'000'000);
  BOOST_TEST(seen[0].limit == 5'000'000);
  BOOST_TEST(seen[1].topic == "account.blocked");
  BOOST_TEST(seen[1].blocked);
  BOOST_TEST(seen[1].spent >= 10'000'000);
  BOOST_TEST(seen[1].limit == 10'000'000);

  // Raising the budget lifts the block.
  BOOST_REQUIRE(set_budget(100'000'000).ok());
  BOOST_REQUIRE(wait_until([&] { return receive() >= 3; }, 10s));
  BOOST_TEST(seen[2].topic == "account.blocked");
  BOOST_TEST(!seen[2].blocked);
  BOOST_TEST(seen[2].limit == 100'000'000);
}

BOOST_AUTO_TEST_CASE(a_malformed_rate_card_is_refused_at_start_with_its_line) {
  Cluster c;
  write_file_atomic(c.dir / "rates.toml", "currency = \"EUR\"\n[[period]]\ncpu_core_hour = \"0.04\"\n[period.gpu_hour]\n"
                                   "A100 = 2.5\n");
  auto argv = c.billing_argv(c.dir / "rates.toml");
  auto [rc, out] = run(argv, 15s);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("rates.toml line 5") != std::string::npos, out);
  BOOST_TEST(out.find("A100") != std::string::npos, out);

  write_file_atomic(c.dir / "usd.toml", "currency = \"USD\"\n[[period]]\ncpu_core_hour = \"0.04\"\n");
  auto [rc2, out2] = run(c.billing_argv(c.dir / "usd.toml"), 15s);
  BOOST_TEST(rc2 == 2);
  BOOST_TEST(out2.find("billing.currency is EUR") != std::string::npos, out2);
}

BOOST_AUTO_TEST_CASE(reload_keeps_the_old_card_when_the_new_one_is_bad) {
  Cluster c;
  write_file_atomic(c.dir / "rates.toml", "[[period]]\n[period.gpu_hour]\nA100 = \"2.50\"\n");
  c.start_billing(c.dir / "rates.toml");
  BOOST_TEST(c.estimate("A100", 1, 3600) == 2'500'000);

  write_file_atomic(c.dir / "rates.toml", "[[period]]\n[period.gpu_hour]\nA100 = \"3.00\"\nH100 = 4.5\n");
  auto client = c.client();
  auto r = client.call(fb::RequestBody::ReloadRates,
                       [](flatbuffers::FlatBufferBuilder& b) { return fb::CreateReloadRates(b).Union(); });
  BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(r.status().message().find("rates.toml line 4") != std::string::npos, r.status().message());
  BOOST_TEST(r.status().message().find("previous one stays in force") != std::string::npos);
  BOOST_TEST(c.estimate("A100", 1, 3600) == 2'500'000);

  // SIGHUP with a bad card: still the old one, still serving.
  c.billing->signal(SIGHUP);
  BOOST_TEST(c.estimate("A100", 2, 3600) == 5'000'000);

  // A good card, by SIGHUP.
  write_file_atomic(c.dir / "rates.toml", "[[period]]\n[period.gpu_hour]\nA100 = \"3.00\"\n");
  c.billing->signal(SIGHUP);
  BOOST_TEST(wait_until([&] { return c.estimate("A100", 1, 3600) == 3'000'000; }, 10s));
  // Users may not reload.
  auto user = c.client("user:ada");
  auto denied = user.call(fb::RequestBody::ReloadRates,
                          [](flatbuffers::FlatBufferBuilder& b) { return fb::CreateReloadRates(b).Union(); });
  BOOST_TEST((denied.status().code() == ErrorCode::PermissionDenied));
}
