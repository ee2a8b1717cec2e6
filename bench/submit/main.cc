// bench-submit: jobs acked per second by a real trainyard-scheduler (with a
// real trainyard-bus), from 1 and from 4 clients, each pipelining SubmitJob
// requests on a DEALER. An ack means the job is in RocksDB (WAL, or fsync'd
// with --set scheduler.durability=fsync: one fsync per loop iteration
// covers every submission of that iteration). Prints each figure next to
// the target. `curve4` runs the same 4 clients with CURVE on every
// hop (keys made by `ty admin keys init`, each client its own user's key)
// and prints its rate as a ratio of the plaintext one measured in the same
// run.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "process.h"
#include "security/site.h"
#include "trainyard/fb/request_generated.h"
#include "trainyard/fb/reply_generated.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;

namespace {

struct Result {
  uint64_t acked = 0;
  uint64_t errors = 0;
  double seconds = 0;
};

// One client: keeps `window` submissions in flight until `jobs` are acked.
// Under CURVE (`keys` set) it dials with user:bench-<index>'s key.
void client(const std::string& endpoint, const std::string& keys, int index, int jobs, int window,
            std::atomic<int>* go, Result* out) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  std::unique_ptr<security::Site> site;
  if (!keys.empty()) {
    security::SecurityOptions o;
    o.key_file = keys + "/user-bench-" + std::to_string(index) + ".key";
    o.authorized_keys = keys + "/authorized_keys";
    auto loaded = security::Site::load(o);
    if (!loaded) throw std::runtime_error(loaded.status().to_string());
    site = std::move(loaded).value();
    if (auto st = security::secure_client(s, "service:scheduler", site.get()); !st) throw std::runtime_error(st.message());
  }
  s.connect(endpoint);
  fb::JobSpecT spec;
  spec.name = "bench";
  spec.user = "bench-" + std::to_string(index);
  spec.account = "bench";
  spec.command = {"python", "train.py", "--epochs", "10"};
  spec.gpus_per_node = 1;
  spec.time_limit_s = 3600;
  flatbuffers::FlatBufferBuilder fbb(1024);
  while (go->load() == 0) std::this_thread::yield();
  int sent = 0, outstanding = 0;
  while (out->acked + out->errors < static_cast<uint64_t>(jobs)) {
    while (outstanding < window && sent < jobs) {
      fbb.Clear();
      auto body = fb::CreateSubmitJob(fbb, fb::CreateJobSpec(fbb, &spec));
      fb::RequestBuilder rb(fbb);
      rb.add_id(static_cast<uint64_t>(sent) + 1);
      rb.add_body_type(fb::RequestBody::SubmitJob);
      rb.add_body(body.Union());
      fb::FinishRequestBuffer(fbb, rb.Finish());
      s.send(zmq::const_buffer(fbb.GetBufferPointer(), fbb.GetSize()), zmq::send_flags::none);
      ++sent;
      ++outstanding;
    }
    zmq::pollitem_t item{static_cast<void*>(s), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(10'000)) == 0) {
      std::fprintf(stderr, "client %d: no reply for 10 s (%d outstanding)\n", index, outstanding);
      out->errors += static_cast<uint64_t>(outstanding);
      break;
    }
    zmq::message_t m;
    while (s.recv(m, zmq::recv_flags::dontwait)) {
      auto* r = fb::GetReply(m.data());
      if (r->code() == fb::ErrorCode::Ok) {
        ++out->acked;
      } else {
        if (out->errors++ == 0) std::fprintf(stderr, "client %d: %s\n", index, r->message() ? r->message()->c_str() : "");
      }
      --outstanding;
    }
  }
}

struct Stack {
  TempDir dir;
  std::unique_ptr<Process> bus, sched;
  std::string endpoint;
  std::vector<std::string> argv;
  std::string keys;  // the keys directory under CURVE, "" plaintext
  int starts = 0;
  nlohmann::json ready;
  void start() {
    std::filesystem::remove(dir / "sched.ready");
    sched = std::make_unique<Process>(argv, dir / ("sched-" + std::to_string(starts++) + ".log"));
    ready = wait_json(dir / "sched.ready", 60s);
    endpoint = ready["endpoint"];
  }
  Stack(const std::vector<std::string>& sets, bool curve) {
    std::vector<std::string> security{"--set", "security.mode=none"};
    if (curve) {
      keys = dir / "keys";
      auto made = trainyard::testing::run({bin("ty"), "admin", "keys", "init", keys, "--user", "bench-0", "bench-1", "bench-2",
                               "bench-3"},
                              30s);
      if (made.first != 0) throw std::runtime_error("ty admin keys init: " + made.second);
      security = {"--set", "security.keys_dir=" + keys};
    }
    auto started = trainyard::testing::start_bus(dir.path(), {.extra = security});
    bus = std::move(started.process);
    const std::string& frontend = started.frontend;
    const std::string& backend = started.backend;
    argv = {bin("trainyard-scheduler"),
                                  "--set", "scheduler.data=" + dir / "sched",
                                  "--set", "scheduler.endpoint=tcp://127.0.0.1:*",
                                  "--set", "bus.frontend=" + frontend,
                                  "--set", "bus.backend=" + backend,
                                  "--set", "broker.endpoint=tcp://127.0.0.1:1",
                                  // Every job stays pending (no broker): no per-user cap for the bench.
                                  "--set", "scheduler.max_submit_jobs_per_user=0",
                                  "--log-level", "warn",
                                  "--ready-file", dir / "sched.ready"};
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    argv.insert(argv.end(), security.begin(), security.end());
    start();
  }
};

double run(const std::string& label, int clients, int jobs, int window, const std::vector<std::string>& sets,
           double target, bool curve = false) {
  Stack stack(sets, curve);
  std::vector<Result> results(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  std::atomic<int> go{0};
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back(client, stack.endpoint, stack.keys, i, jobs, window, &go, &results[static_cast<size_t>(i)]);
  }
  std::this_thread::sleep_for(200ms);  // let the DEALERs connect before the clock starts
  auto t0 = std::chrono::steady_clock::now();
  go = 1;
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t acked = 0, errors = 0;
  for (auto& r : results) {
    acked += r.acked;
    errors += r.errors;
  }
  double rate = static_cast<double>(acked) / secs;
  std::printf("  %-28s %9.0f jobs/s  target %6.0f  %s  (%lu acked in %.2f s, %lu errors)\n", label.c_str(), rate, target,
              rate >= target ? "met" : "NOT met", static_cast<unsigned long>(acked), secs,
              static_cast<unsigned long>(errors));
  // Honesty check: a scheduler killed with SIGKILL right after the last ack
  // and started again has every acked job.
  stack.sched->kill9();
  stack.sched->wait(5s);
  stack.start();
  uint64_t restored = stack.ready["jobs"].get<uint64_t>();
  std::printf("  %-28s after SIGKILL and restart: %lu jobs stored %s\n", "", static_cast<unsigned long>(restored),
              restored >= acked ? "(all acked)" : "(ACKED JOBS MISSING)");
  std::fflush(stdout);
  stack.sched->stop();
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 20'000, window = 256;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--jobs")) jobs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--window")) window = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
  }
  if (argc > 1 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::printf("bench-submit [--jobs N per client (20000)] [--window in-flight per client (256)] "
                "[--only wal1|wal4|fsync4|curve4]\n");
    return 0;
  }
  std::printf("bench-submit: SubmitJob acked (durable) per second, %d jobs per client, %d in flight each, %u cores\n",
              jobs, window, std::thread::hardware_concurrency());
  if (only.empty() || only == "wal1") run("1 client, WAL", 1, jobs, window, {"scheduler.durability=wal"}, 8000);
  double plain4 = 0;
  if (only.empty() || only == "wal4" || only == "curve4") {
    plain4 = run("4 clients, WAL", 4, jobs, window, {"scheduler.durability=wal"}, 20000);
  }
  if (only.empty() || only == "curve4") {
    double curve4 = run("4 clients, WAL, CURVE", 4, jobs, window, {"scheduler.durability=wal"}, 10000, true);
    std::printf("  %-28s %9.2f of plaintext (same run)\n", "CURVE / plain", plain4 > 0 ? curve4 / plain4 : 0);
  }
  if (only.empty() || only == "fsync4") run("4 clients, fsync (group commit)", 4, jobs, window, {"scheduler.durability=fsync"}, 5000);
  return 0;
}
