// What the ty binary's tests share: an environment that ignores the user's
// own config, running ty in it, and stand-ins for the scheduler, the broker,
// one agent and the metrics aggregator (real ROUTER sockets in this process).
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "process.h"
#include "rpc/server.h"
#include "trainyard/client.h"
#include "util/clock.h"

using namespace trainyard;
namespace tt = trainyard::testing;
using namespace std::chrono_literals;

namespace ty_testing {

// An environment that ignores the user's own config. The fakes these tests
// talk to are plaintext: that user's config turns CURVE off (the test of a
// missing key removes it).
inline std::map<std::string, std::string> clean_env(const tt::TempDir& home) {
  std::filesystem::create_directories(home / ".config/trainyard");
  std::ofstream(home / ".config/trainyard/config.toml") << "[security]\nmode = \"none\"\n";
  return {{"HOME", home.path()}, {"TY_CONFIG", ""}, {"USER", "ada"}};
}

inline std::pair<int, std::string> ty(std::vector<std::string> args, const tt::TempDir& home,
                               std::chrono::milliseconds timeout = 20s) {
  args.insert(args.begin(), tt::bin("ty"));
  return tt::run(args, timeout, clean_env(home));
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Stand-ins for the scheduler, the broker and one agent, served from a
// thread. Jobs are kept as records; GetJob moves job 101 along its life.
class FakeServices {
 public:
  FakeServices() {
    scheduler_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "scheduler");
    broker_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "broker");
    agent_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "agent");
    metrics_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "metrics");
    scheduler_->on(fb::RequestBody::SubmitJob, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      q.body_as_SubmitJob()->spec()->UnPackTo(&submitted_);
      ++submits_;
      auto& b = r.builder();
      std::vector<uint64_t> ids = {101};
      r.ok(fb::ReplyBody::Submitted, fb::CreateSubmittedDirect(b, &ids, 0).Union());
    });
    scheduler_->on(fb::RequestBody::GetJob, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      uint64_t id = q.body_as_GetJob()->job_id();
      if (id != 101 && id != 102) return r.error(Status::not_found("job " + std::to_string(id) + " does not exist"));
      auto rec = record(id);
      if (id == 101 && ++gets_ >= 3) rec.state = fb::JobState::Succeeded;
      if (id == 102 && ++gets_ >= 3) {
        rec.state = fb::JobState::Failed;
        rec.exit_code = 3;
      }
      auto& b = r.builder();
      r.ok(fb::ReplyBody::JobRecord, fb::CreateJobRecord(b, &rec).Union());
    });
    scheduler_->on(fb::RequestBody::QueryJobs, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      auto* f = q.body_as_QueryJobs();
      last_query_user_ = f->user() ? f->user()->str() : "";
      last_query_states_ = f->states() ? f->states()->size() : 0;
      fb::JobListT list;
      list.jobs.push_back(std::make_unique<fb::JobRecordT>(record(101)));
      auto& b = r.builder();
      r.ok(fb::ReplyBody::JobList, fb::CreateJobList(b, &list).Union());
    });
    scheduler_->on(fb::RequestBody::CancelJob, [](const fb::Request& q, rpc::Responder& r) {
      uint64_t id = q.body_as_CancelJob()->job_id();
      if (id == 999) return r.error(Status::not_found("job 999 does not exist"));
      if (id == 102) return r.error(Status::failed_precondition("job 102 has already ended (Succeeded)"));
      r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
    });
    broker_->on(fb::RequestBody::ListNodes, [this](const fb::Request&, rpc::Responder& r) {
      fb::NodeListT list;
      auto st = std::make_unique<fb::NodeStatusT>();
      st->node = std::make_unique<fb::NodeInfoT>();
      st->node->name = "node-1";
      st->node->agent_endpoint = agent_->endpoint();
      st->node->cpus = 32;
      st->node->memory_mb = 256 * 1024;
      for (uint32_t i = 0; i < 4; ++i) {
        auto g = std::make_unique<fb::GpuInfoT>();
        g->index = i;
        g->type = "A100";
        st->node->gpus.push_back(std::move(g));
      }
      st->up = true;
      st->allocated_gpus = {0, 1};
      list.nodes.push_back(std::move(st));
      auto& b = r.builder();
      r.ok(fb::ReplyBody::NodeList, fb::CreateNodeList(b, &list).Union());
    });
    // Ranks three runs by the goal the request names, as the aggregator does.
    metrics_->on(fb::RequestBody::CompareRuns, [this](const fb::Request& q, rpc::Responder& r) {
      bool maximize = q.body_as_CompareRuns()->maximize();
      {
        std::lock_guard lock(mu_);
        compare_maximize_.push_back(maximize);
      }
      fb::ComparisonT c;
      c.metric = q.body_as_CompareRuns()->metric()->str();
      for (auto [id, best] : {std::pair{1, 0.2}, {2, 0.9}, {3, 0.5}}) {
        auto row = std::make_unique<fb::ComparisonRowT>();
        row->job_id = static_cast<uint64_t>(id);
        row->best_value = best;
        c.rows.push_back(std::move(row));
      }
      std::sort(c.rows.begin(), c.rows.end(), [maximize](const auto& a, const auto& b) {
        return maximize ? a->best_value > b->best_value : a->best_value < b->best_value;
      });
      auto& b = r.builder();
      r.ok(fb::ReplyBody::Comparison, fb::CreateComparison(b, &c).Union());
    });
    agent_->on(fb::RequestBody::ReadLog, [](const fb::Request& q, rpc::Responder& r) {
      auto* rl = q.body_as_ReadLog();
      std::string log = rl->stderr() ? "an error line\n" : "line one\nline two\n";
      uint64_t off = std::min<uint64_t>(rl->offset(), log.size());
      // Serve at most 5 bytes at a time so the client must loop.
      std::string part = log.substr(off, 5);
      auto& b = r.builder();
      auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(part.data()), part.size());
      r.ok(fb::ReplyBody::LogChunk, fb::CreateLogChunk(b, data, off, log.size(), true).Union());
    });
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServices() {
    stop_ = true;
    thread_.join();
  }

  std::string scheduler() const { return scheduler_->endpoint(); }
  std::string broker() const { return broker_->endpoint(); }
  std::string metrics() const { return metrics_->endpoint(); }
  std::vector<bool> compare_maximize() {
    std::lock_guard lock(mu_);
    return compare_maximize_;
  }
  fb::JobSpecT submitted() {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  int submits() {
    std::lock_guard lock(mu_);
    return submits_;
  }
  std::string last_query_user() {
    std::lock_guard lock(mu_);
    return last_query_user_;
  }
  size_t last_query_states() {
    std::lock_guard lock(mu_);
    return last_query_states_;
  }

 private:
  fb::JobRecordT record(uint64_t id) {
    fb::JobRecordT rec;
    rec.job_id = id;
    rec.spec = std::make_unique<fb::JobSpecT>(submitted_);
    rec.spec->name = "train";
    rec.spec->user = "ada";
    rec.spec->gpus_per_node = 2;
    rec.spec->gpu_type = "A100";
    rec.state = fb::JobState::Running;
    rec.nodes = {"node-1"};
    rec.gpu_indices = {0, 1};
    rec.submit_time_ns = SystemClock().now_ns() - 60'000'000'000;
    rec.start_time_ns = SystemClock().now_ns() - 30'000'000'000;
    for (auto [to, why] : {std::pair{fb::JobState::Pending, "submitted"}, {fb::JobState::Running, "started on node-1"}}) {
      auto t = std::make_unique<fb::JobTransitionT>();
      t->to = to;
      t->reason = why;
      t->time_ns = rec.submit_time_ns;
      rec.history.push_back(std::move(t));
    }
    return rec;
  }

  void loop() {
    while (!stop_) {
      zmq::pollitem_t items[] = {{static_cast<void*>(scheduler_->socket()), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(broker_->socket()), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(agent_->socket()), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(metrics_->socket()), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 4, 50ms);
      for (auto* s : {scheduler_.get(), broker_.get(), agent_.get(), metrics_.get()}) {
        s->poll_in();
        s->flush();
      }
    }
  }

  zmq::context_t ctx_{1};
  std::unique_ptr<rpc::Server> scheduler_, broker_, agent_, metrics_;
  std::vector<bool> compare_maximize_;
  std::mutex mu_;
  fb::JobSpecT submitted_;
  int submits_ = 0;
  int gets_ = 0;
  std::string last_query_user_;
  size_t last_query_states_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ty_testing

using namespace ty_testing;
