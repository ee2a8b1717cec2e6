// Hostile input against the real trainyard-scheduler (issue 13): oversized
// and malformed specs are refused and the scheduler keeps answering; one
// user cannot queue without bound; QueryJobs answers in pages under a byte
// budget and the client library follows them; ended jobs are purged after
// retention (ty says so) and an array stores its spec once. No broker and
// no bus are needed: jobs stay pending until cancelled.
#define BOOST_TEST_MODULE hostile_scheduler
#include <boost/test/unit_test.hpp>

#include <map>

#include <fstream>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "process.h"
#include "rpc/client.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "trainyard/client.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;

namespace {

// ty's environment for this plaintext scheduler: a user config with CURVE off.
std::map<std::string, std::string> plain_home(const testing::TempDir& home) {
  std::filesystem::create_directories(home / ".config/trainyard");
  std::ofstream(home / ".config/trainyard/config.toml") << "[security]\nmode = \"none\"\n";
  return {{"HOME", home.path()}, {"TY_CONFIG", ""}, {"USER", "alice"}};
}

fb::JobSpecT make_spec(const std::string& user = "alice") {
  fb::JobSpecT s;
  s.name = "hostile";
  s.user = user;
  s.account = "vision";
  s.command = {"sleep", "1"};
  s.gpus_per_node = 1;
  s.time_limit_s = 600;
  return s;
}

void add_env(fb::JobSpecT& s, const std::string& key, size_t bytes) {
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = key;
  kv->value = std::string(bytes, 'x');
  s.env.push_back(std::move(kv));
}

// One scheduler process with its own data directory; its broker and bus
// endpoints lead nowhere.
struct Scheduler {
  TempDir dir;
  zmq::context_t ctx{1};
  std::unique_ptr<Process> proc;
  std::string endpoint;
  std::vector<std::string> sets;
  int starts = 0;

  explicit Scheduler(std::vector<std::string> s = {}, bool start_now = true) : sets(std::move(s)) {
    if (start_now) start();
  }

  void start() {
    std::filesystem::remove(dir / "sched.ready");
    std::vector<std::string> argv{bin("trainyard-scheduler"), "--set", "scheduler.data=" + dir / "sched",
                                  "--set", "scheduler.endpoint=tcp://127.0.0.1:*",
                                  "--set", "bus.frontend=ipc://" + dir / "no-bus",
                                  "--set", "bus.backend=ipc://" + dir / "no-bus-out",
                                  "--set", "broker.endpoint=ipc://" + dir / "no-broker",
                                  "--ready-file", dir / "sched.ready"};
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    proc = std::make_unique<Process>(argv, dir / ("sched-" + std::to_string(starts++) + ".log"));
    endpoint = wait_json(dir / "sched.ready", 20s)["endpoint"];
  }
  void restart() {
    BOOST_REQUIRE_EQUAL(proc->stop(), 0);
    start();
  }
  std::unique_ptr<rpc::Client> rpc(int timeout_ms = 5000) {
    rpc::ClientOptions o;
    o.timeout_ms = timeout_ms;
    o.tries = 1;
    return std::make_unique<rpc::Client>(ctx, "scheduler", endpoint, o);
  }
  client::Client user_client() {
    client::Endpoints e;
    e.scheduler = endpoint;
    e.bus = {"ipc://" + dir / "no-bus-out"};
    e.timeout_ms = 5000;
    e.security.mode = security::Mode::kNone;  // this scheduler runs plaintext
    return client::Client(e);
  }
  uint64_t data_bytes() {
    uint64_t total = 0;
    for (auto& f : std::filesystem::recursive_directory_iterator(dir / "sched")) {
      if (f.is_regular_file()) total += f.file_size();
    }
    return total;
  }
};

Result<rpc::Reply> submit(rpc::Client& c, const fb::JobSpecT& spec) {
  return c.call(fb::RequestBody::SubmitJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateSubmitJob(b, fb::CreateJobSpec(b, &spec)).Union();
  });
}

std::vector<uint64_t> submit_ok(rpc::Client& c, const fb::JobSpecT& spec) {
  auto r = submit(c, spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  auto* ids = r->body<fb::Submitted>()->job_ids();
  return {ids->begin(), ids->end()};
}

Status get_job(rpc::Client& c, uint64_t id) {
  auto r = c.call(fb::RequestBody::GetJob, [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetJob(b, id).Union(); });
  return r ? Status::success() : r.status();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_ten_megabyte_spec_is_refused_quickly_and_the_scheduler_still_answers) {
  Scheduler s;
  auto c = s.rpc();
  auto spec = make_spec();
  add_env(spec, "BLOB", 10 << 20);
  spec.array = "0-9999";
  auto t0 = std::chrono::steady_clock::now();
  auto r = submit(*c, spec);
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(contains(r.status().message(), "spec: "), r.status().message());
  BOOST_TEST(contains(r.status().message(), "over the limit of 65536 (scheduler.max_spec_bytes)"));
  BOOST_TEST(took < 2s);
  // Each field's own limit, over the wire.
  auto many = make_spec();
  for (int i = 0; i < 1025; ++i) add_env(many, "V" + std::to_string(i), 1);
  r = submit(*c, many);
  BOOST_TEST(contains(r.status().message(), "env: 1025 variables is over the limit of 1024 (scheduler.max_env)"));
  auto bad = make_spec();
  bad.name = "\xe9t\xe9";
  r = submit(*c, bad);
  BOOST_TEST(contains(r.status().message(), "name: is not valid UTF-8"), r.status().message());
  auto grace = make_spec();
  grace.grace_s = 4294967295u;
  r = submit(*c, grace);
  BOOST_TEST(contains(r.status().message(), "grace_s: 4294967295 s is over the maximum of partition 'default' (300 s"),
             r.status().message());
  // Still serving, and nothing was kept.
  BOOST_TEST(submit_ok(*c, make_spec()).size() == 1u);
  BOOST_TEST(s.proc->running());
}

BOOST_AUTO_TEST_CASE(a_user_cannot_queue_more_than_max_submit_jobs) {
  Scheduler s({"scheduler.max_submit_jobs_per_user=5"});
  auto c = s.rpc();
  auto arr = make_spec();
  arr.array = "0-3";
  submit_ok(*c, arr);
  auto one = submit_ok(*c, make_spec());
  auto r = submit(*c, make_spec());
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == ErrorCode::ResourceExhausted));
  BOOST_TEST(contains(r.status().message(), "user 'alice' has 5 unfinished jobs"), r.status().message());
  BOOST_TEST(contains(r.status().message(), "the limit is 5 (scheduler.max_submit_jobs_per_user)"));
  BOOST_TEST(submit_ok(*c, make_spec("bob")).size() == 1u);
  // The count survives a restart; an ended job frees its place.
  s.restart();
  c = s.rpc();
  BOOST_TEST(!submit(*c, make_spec()).ok());
  auto cancel = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, one[0], "test").Union();
  });
  BOOST_REQUIRE(cancel.ok());
  BOOST_TEST(submit(*c, make_spec()).ok());
}

BOOST_AUTO_TEST_CASE(query_answers_in_pages_under_the_budget_and_the_client_sees_every_job) {
  constexpr uint32_t kBudget = 64 * 1024;
  Scheduler s({"scheduler.query_page_bytes=" + std::to_string(kBudget)});
  auto c = s.rpc();
  auto spec = make_spec();
  add_env(spec, "PAYLOAD", 3000);
  std::set<uint64_t> submitted;
  for (int i = 0; i < 100; ++i) submitted.insert(submit_ok(*c, spec)[0]);
  spec.array = "0-49";
  for (auto id : submit_ok(*c, spec)) submitted.insert(id);

  // Raw pages: each under the budget, each moving forward.
  uint64_t after = 0;
  int pages = 0;
  std::set<uint64_t> seen;
  for (;;) {
    auto r = c->call(fb::RequestBody::QueryJobs, [&](flatbuffers::FlatBufferBuilder& b) {
      fb::QueryJobsBuilder q(b);
      q.add_limit(1'000'000);
      q.add_after_job_id(after);
      return q.Finish().Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    fb::JobListT list;
    r->body<fb::JobList>()->UnPackTo(&list);
    flatbuffers::FlatBufferBuilder again;
    again.Finish(fb::CreateJobList(again, &list));
    BOOST_TEST(again.GetSize() <= kBudget);
    BOOST_REQUIRE(!list.jobs.empty());
    for (auto& j : list.jobs) BOOST_TEST(seen.insert(j->job_id).second);
    ++pages;
    if (!list.truncated) break;
    BOOST_REQUIRE(list.next_after_job_id > after);
    after = list.next_after_job_id;
  }
  BOOST_TEST(pages >= 4);
  BOOST_TEST(seen == submitted);

  // The client library follows the pages: ty queue --all sees them all.
  auto user = s.user_client();
  client::JobFilter f;
  f.limit = 1'000'000;
  auto all = user.list(f);
  BOOST_REQUIRE_MESSAGE(all.ok(), all.status().to_string());
  std::set<uint64_t> listed;
  for (auto& j : *all) listed.insert(j.job_id);
  BOOST_TEST(listed == submitted);
  BOOST_TEST(all->size() == submitted.size());
  f.limit = 120;  // a limit across pages is honoured
  BOOST_TEST(user.list(f)->size() == 120u);
  // And so does ty queue --all, as a user runs it.
  TempDir home;
  auto [rc, out] = run({bin("ty"), "--scheduler", s.endpoint, "queue", "--all", "--json"}, 20s,
                       plain_home(home));
  BOOST_REQUIRE_EQUAL(rc, 0);
  auto jobs = nlohmann::json::parse(out.substr(out.find('[')));
  BOOST_TEST(jobs.size() == submitted.size());
}

BOOST_AUTO_TEST_CASE(absurd_limits_in_the_config_stop_the_scheduler_at_start_naming_the_key) {
  TempDir dir;
  for (auto [set, key] : {std::pair{"scheduler.max_array_size=-1", "scheduler.max_array_size"},
                          std::pair{"scheduler.max_submit_jobs_per_user=-3", "scheduler.max_submit_jobs_per_user"},
                          std::pair{"scheduler.query_page_bytes=99999999999", "scheduler.query_page_bytes"}}) {
    auto [rc, out] = run({bin("trainyard-scheduler"), "--set", "scheduler.data=" + dir / "sched", "--set",
                          "scheduler.endpoint=tcp://127.0.0.1:*", "--set", set},
                         20s);
    BOOST_TEST(rc != 0);
    BOOST_TEST(contains(out, std::string(key) + ": "), out);
    BOOST_TEST(contains(out, "out of range"), out);
  }
}

BOOST_AUTO_TEST_CASE(ended_jobs_are_purged_ty_says_so_and_a_restart_is_clean) {
  Scheduler s({"scheduler.job_retention_s=1", "scheduler.cycle_ms=100"});
  auto c = s.rpc();
  auto ended = submit_ok(*c, make_spec())[0];
  auto arr = make_spec();
  arr.array = "0-2";
  auto tasks = submit_ok(*c, arr);
  auto live = submit_ok(*c, make_spec())[0];
  for (uint64_t id : {ended, tasks[0] - 1}) {  // the job, and the array by its id
    auto r = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateCancelJobDirect(b, id, "test").Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  }
  BOOST_REQUIRE(wait_until([&] { return !get_job(*c, ended).ok() && !get_job(*c, tasks[2]).ok(); }, 10s));
  auto st = get_job(*c, ended);
  BOOST_TEST((st.code() == ErrorCode::NotFound));
  BOOST_TEST(contains(st.message(), "job " + std::to_string(ended) +
                                        " was purged after the retention period (ended jobs are kept 1 second)"),
             st.message());
  TempDir home;
  auto [rc, out] = run({bin("ty"), "--scheduler", s.endpoint, "status", std::to_string(tasks[1])}, 20s,
                       plain_home(home));
  BOOST_TEST(rc != 0);
  BOOST_TEST(contains(out, "was purged after the retention period (ended jobs are kept 1 second)"), out);
  BOOST_TEST(contains(get_job(*c, live + 100).message(), "does not exist"));

  s.restart();
  c = s.rpc();
  BOOST_TEST(get_job(*c, live).ok());
  BOOST_TEST(contains(get_job(*c, ended).message(), "was purged"));
  BOOST_TEST(contains(get_job(*c, tasks[0] - 1).message(), "was purged"));
  BOOST_TEST(!contains(s.proc->log(), "could not be read"), s.proc->log());
  // New ids never reuse a purged one.
  BOOST_TEST(submit_ok(*c, make_spec())[0] > live);
}

BOOST_AUTO_TEST_CASE(an_array_stores_its_spec_once) {
  constexpr size_t kEnv = 32 * 1024, kTasks = 1000;
  Scheduler s;
  auto c = s.rpc();
  uint64_t before = s.data_bytes();
  auto spec = make_spec();
  add_env(spec, "BIG", kEnv);
  spec.array = "0-" + std::to_string(kTasks - 1);
  auto tasks = submit_ok(*c, spec);
  BOOST_REQUIRE_EQUAL(tasks.size(), kTasks);
  BOOST_REQUIRE_EQUAL(s.proc->stop(), 0);
  uint64_t grown = s.data_bytes() - before;
  BOOST_TEST_MESSAGE("an array of " << kTasks << " tasks with a " << kEnv << "-byte env grew the store by " << grown
                                    << " bytes");
  // Once per task would be over kTasks * kEnv (32 MB) for the records alone.
  BOOST_TEST(grown < 4 * kEnv + kTasks * 2048);
  // After a restart every task still has the whole spec.
  s.start();
  c = s.rpc();
  auto r = c->call(fb::RequestBody::GetJob,
                   [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetJob(b, tasks.back()).Union(); });
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  auto* env = r->body<fb::JobRecord>()->spec()->env();
  BOOST_REQUIRE(env && env->size() == 1);
  BOOST_TEST(env->Get(0)->value()->size() == kEnv);
}

BOOST_AUTO_TEST_CASE(array_tasks_stored_with_their_own_spec_keep_it_after_the_upgrade) {
  // A store as the scheduler wrote it before arrays had a spec row: three
  // tasks of array 1, each record with the whole spec.
  Scheduler s({}, false);
  {
    auto store = storage::Store::open(s.dir / "sched", storage::Options{{"jobs", "meta"}, {}, {}});
    BOOST_REQUIRE(store.ok());
    storage::Batch batch;
    for (uint64_t id = 2; id <= 4; ++id) {
      fb::JobRecordT rec;
      rec.job_id = id;
      rec.array_job_id = 1;
      rec.array_index = static_cast<int32_t>(id - 2);
      rec.state = fb::JobState::Pending;
      rec.spec = std::make_unique<fb::JobSpecT>(make_spec());
      add_env(*rec.spec, "OLD", 100);
      rec.spec->array = "0-2";
      rec.spec->partition = "default";
      rec.spec->cpus = 1;
      flatbuffers::FlatBufferBuilder b;
      b.Finish(fb::CreateJobRecord(b, &rec));
      std::string v{char(1), char(0)};
      v.append(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
      batch.put((*store)->cf("jobs"), storage::encode_u64(id), v);
    }
    batch.put((*store)->cf("meta"), "next_job_id", storage::encode_u64(5));
    BOOST_REQUIRE((*store)->commit(batch).ok());
  }
  s.start();
  auto c = s.rpc();
  auto env_of = [&](uint64_t id) -> std::string {
    auto r = c->call(fb::RequestBody::GetJob, [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetJob(b, id).Union(); });
    if (!r || !r->body<fb::JobRecord>()->spec() || !r->body<fb::JobRecord>()->spec()->env()) return "";
    return r->body<fb::JobRecord>()->spec()->env()->Get(0)->key()->str();
  };
  BOOST_TEST(env_of(4) == "OLD");
  // Cancelling stores the tasks again, now without their own spec.
  auto r = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, 1, "test").Union();
  });
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  s.restart();
  c = s.rpc();
  for (uint64_t id = 2; id <= 4; ++id) BOOST_TEST(env_of(id) == "OLD");
  BOOST_TEST(!contains(s.proc->log(), "could not be read"), s.proc->log());
}
