// ty and the client library against the real trainyard-scheduler and a real
// trainyard-bus (no broker: jobs stay pending, which is all that submit,
// queue, status, hold, release, cancel and wait need).
#define BOOST_TEST_MODULE client_against_scheduler
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "process.h"
#include "trainyard/client.h"

using namespace trainyard;
namespace tt = trainyard::testing;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct Stack {
  tt::TempDir dir;
  std::unique_ptr<tt::Process> bus, scheduler;
  std::string frontend, backend, endpoint;

  Stack() {
    auto started = tt::start_bus(dir.path());
    bus = std::move(started.process);
    frontend = started.frontend;
    backend = started.backend;
    scheduler = std::make_unique<tt::Process>(
        std::vector<std::string>{tt::bin("trainyard-scheduler"), "--set", "scheduler.data=" + dir / "sched", "--set",
                                 "scheduler.endpoint=tcp://127.0.0.1:*", "--set", "bus.frontend=" + frontend, "--set",
                                 "bus.backend=" + backend, "--set", "broker.endpoint=ipc://" + dir / "no-broker",
                                 "--ready-file", dir / "sched.ready"},
        dir / "sched.log");
    endpoint = tt::wait_json(dir / "sched.ready", 20s)["endpoint"];
  }

  std::vector<std::string> argv(std::vector<std::string> args) const {
    args.insert(args.begin(), {tt::bin("ty"), "--scheduler", endpoint, "--bus", backend});
    return args;
  }
  // This scheduler runs plaintext: ty's user config turns CURVE off.
  std::map<std::string, std::string> env() const {
    std::filesystem::create_directories(dir / ".config/trainyard");
    std::ofstream(dir / ".config/trainyard/config.toml") << "[security]\nmode = \"none\"\n";
    return {{"HOME", dir.path()}, {"TY_CONFIG", ""}, {"USER", "ada"}};
  }
  std::pair<int, std::string> ty(std::vector<std::string> args) const { return tt::run(argv(std::move(args)), 20s, env()); }

  client::Endpoints endpoints() const {
    client::Endpoints e;
    e.scheduler = endpoint;
    e.bus = {backend};
    e.security.mode = security::Mode::kNone;
    return e;
  }
};

uint64_t submit_one(const Stack& s, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"submit", "--parsable", "-J", "probe", "-t", "10"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), {"sleep", "1"});
  auto [rc, out] = s.ty(args);
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  return std::stoull(out);
}

}  // namespace

BOOST_AUTO_TEST_CASE(submit_queue_status_hold_release_cancel) {
  Stack s;
  uint64_t id = submit_one(s, {"--label", "lr=0.1", "--experiment", "e1"});
  BOOST_TEST(id > 0u);

  auto [rc, out] = s.ty({"queue", "--json"});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  auto list = nlohmann::json::parse(out);
  BOOST_REQUIRE(list.size() == 1u);
  BOOST_TEST(list[0]["job_id"] == id);
  BOOST_TEST(list[0]["state"] == "pending");
  BOOST_TEST(list[0]["spec"]["name"] == "probe");
  BOOST_TEST(list[0]["spec"]["user"] == "ada");
  BOOST_TEST(list[0]["spec"]["labels"]["lr"] == "0.1");

  auto [rc2, table] = s.ty({"queue"});
  BOOST_TEST(rc2 == 0);
  BOOST_TEST(contains(table, "probe"), table);
  BOOST_TEST(contains(table, "pending"), table);

  BOOST_TEST(s.ty({"hold", std::to_string(id)}).first == 0);
  auto [rc3, st] = s.ty({"status", std::to_string(id), "--json"});
  BOOST_REQUIRE_MESSAGE(rc3 == 0, st);
  BOOST_TEST(nlohmann::json::parse(st)["state"] == "held");
  BOOST_TEST(s.ty({"release", std::to_string(id)}).first == 0);

  auto [rc4, cancel] = s.ty({"cancel", std::to_string(id)});
  BOOST_TEST(rc4 == 0, cancel);
  auto [rc5, human] = s.ty({"status", std::to_string(id)});
  BOOST_TEST(rc5 == 0);
  BOOST_TEST(contains(human, "cancelled"), human);
  BOOST_TEST(contains(human, "held"), human);  // in the history
  // Already ended: the operation fails (1), with the scheduler's reason.
  auto [rc6, again] = s.ty({"cancel", std::to_string(id)});
  BOOST_TEST(rc6 == 1, again);

  // Finished jobs only show with --all.
  auto [rc7, active] = s.ty({"queue", "--json"});
  BOOST_TEST(nlohmann::json::parse(active).empty(), active);
  auto [rc8, all] = s.ty({"queue", "--all", "--json"});
  BOOST_TEST(nlohmann::json::parse(all).size() == 1u, all);
}

BOOST_AUTO_TEST_CASE(a_bad_spec_is_refused_with_exit_2_naming_the_field) {
  Stack s;
  auto [rc, out] = s.ty({"submit", "-t", "10", "-p", "no-such-partition", "true"});
  BOOST_TEST(rc == 2, out);
  BOOST_TEST(contains(out, "partition"), out);
  auto [rc2, out2] = s.ty({"status", "424242"});
  BOOST_TEST(rc2 == 1, out2);
}

BOOST_AUTO_TEST_CASE(an_array_is_submitted_as_one_job_per_index) {
  Stack s;
  auto [rc, out] = s.ty({"submit", "--json", "-t", "10", "--array", "0-4%2", "true"});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  auto j = nlohmann::json::parse(out);
  BOOST_TEST(j["job_ids"].size() == 5u);
  BOOST_TEST(j["array_job_id"].get<uint64_t>() > 0u);
}

BOOST_AUTO_TEST_CASE(wait_ends_when_the_job_is_cancelled_and_exits_1) {
  Stack s;
  uint64_t id = submit_one(s);
  tt::Process waiter(s.argv({"wait", std::to_string(id)}), s.dir / "wait.log", s.env());
  BOOST_TEST(tt::wait_until([&] { return contains(waiter.log(), "pending"); }, 10s), waiter.log());
  BOOST_TEST(s.ty({"cancel", std::to_string(id)}).first == 0);
  auto rc = waiter.wait(10s);
  BOOST_REQUIRE(rc.has_value());
  BOOST_TEST(*rc == 1);
  BOOST_TEST(contains(waiter.log(), "job " + std::to_string(id) + " cancelled"), waiter.log());
}

BOOST_AUTO_TEST_CASE(the_library_watches_job_events_on_the_bus) {
  Stack s;
  client::Client c(s.endpoints(), "user:ada");
  std::atomic<uint64_t> seen{0};
  // watch() follows job.state (the queue line everyone may see; whole specs
  // in job.submitted are for services).
  std::thread watcher([&] {
    auto st = c.watch({}, [&](const client::JobEvent& e) {
      if (e.state && e.state->to == fb::JobState::Cancelled) seen = e.job_id;
      return !seen;
    }, 20s);
    BOOST_TEST(st.ok(), st.to_string());
  });
  // A SUB socket needs a moment to join: cancel jobs until the watcher sees one.
  client::Client submitter(s.endpoints(), "user:ada");
  fb::JobSpecT spec;
  spec.user = "ada";
  spec.command = {"true"};
  spec.time_limit_s = 60;
  std::vector<uint64_t> ids;
  BOOST_TEST(tt::wait_until(
      [&] {
        if (seen) return true;
        auto r = submitter.submit(spec);
        if (r) {
          ids.push_back(r->job_ids.front());
          (void)submitter.cancel(r->job_ids.front(), "watched");
        }
        std::this_thread::sleep_for(100ms);
        return seen.load() != 0;
      },
      15s));
  watcher.join();
  BOOST_TEST((std::find(ids.begin(), ids.end(), seen.load()) != ids.end()));

  // A job to cancel below, still pending.
  auto pending = submitter.submit(spec);
  BOOST_REQUIRE(pending.ok());
  ids.insert(ids.begin(), pending->job_ids.front());

  // wait() on a cancelled job returns its final record.
  BOOST_REQUIRE(!ids.empty());
  BOOST_TEST(c.cancel(ids.front(), "test").ok());
  auto done = c.wait({ids.front()}, 10s);
  BOOST_REQUIRE_MESSAGE(done.ok(), done.status().to_string());
  BOOST_TEST((done->front().state == fb::JobState::Cancelled));
}
