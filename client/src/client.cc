// The Client: request-reply wrappers over rpc::Client, plus logs, which
// combines several requests into one user action (wait and watch, which use
// the bus too, are in job_wait.cc).
#include "trainyard/client.h"

#include <algorithm>
#include <thread>
#include <random>
#include <set>

#include <zmq.hpp>

#include "bus/event.h"
#include "job/job_state.h"
#include "metric/metric_goal.h"
#include "rpc/client.h"
#include "util/clock.h"
#include "unpack.h"

namespace trainyard::client {
namespace {

using std::chrono::milliseconds;

std::string random_token() {
  std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) s += kHex[rd() % 16];
  return s;
}

}  // namespace

bool is_terminal(fb::JobState state) { return trainyard::is_terminal(state); }

Client::Client(Endpoints endpoints, std::string principal)
    : endpoints_(std::move(endpoints)), principal_(std::move(principal)), ctx_(std::make_unique<zmq::context_t>(1)) {
  // Under CURVE this process proves who it is with the user's key; the
  // principal named in requests is then only a courtesy.
  if (endpoints_.security.mode == security::Mode::kCurve) {
    auto site = security::Site::load(endpoints_.security);
    if (site) {
      site_ = std::move(site).value();
    } else {
      secured_ = Status(site.status().code(), site.status().message() + " (run `ty login`, or use a config with "
                                              "security.mode = \"none\")");
    }
  }
}

Client::~Client() {
  peers_.clear();  // sockets before their context
  site_.reset();
}

rpc::Client& Client::peer(const std::string& service) {
  auto it = peers_.find(service);
  if (it != peers_.end()) return *it->second;
  std::string endpoint;
  std::string name = service;
  rpc::ClientOptions o;
  if (service == "scheduler") {
    endpoint = endpoints_.scheduler;
    o.server = endpoints_.scheduler_principal;
  } else if (service == "broker") {
    endpoint = endpoints_.broker;
    name = "resource broker";
    o.server = endpoints_.broker_principal;
  } else if (service == "metrics") {
    endpoint = endpoints_.metrics;
    name = "metrics-aggregator";
    o.server = endpoints_.metrics_principal;
  } else if (service == "billing") {
    endpoint = endpoints_.billing;
    o.server = endpoints_.billing_principal;
  } else {  // "agent <node> <endpoint>"
    auto node = service.substr(6, service.find(' ', 6) - 6);
    endpoint = service.substr(service.find(' ', 6) + 1);
    name = "node agent";
    o.server = "agent:" + node;
  }
  o.timeout_ms = endpoints_.timeout_ms;
  o.tries = 2;
  o.principal = principal_;
  o.site = site_.get();
  auto c = std::make_unique<rpc::Client>(*ctx_, name, endpoint, o);
  if (!secured_) c->refuse(secured_);
  auto& ref = *c;
  peers_[service] = std::move(c);
  return ref;
}

// ---- jobs ----

Result<SubmitResult> Client::submit(const fb::JobSpecT& spec, bool held) {
  fb::JobSpecT copy = spec;
  if (copy.client_token.empty()) copy.client_token = random_token();
  auto& p = peer("scheduler");
  auto reply = p.call(fb::RequestBody::SubmitJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateSubmitJob(b, fb::CreateJobSpec(b, &copy), held).Union();
  });
  auto s = unpack<fb::Submitted>(reply, p.peer());
  if (!s) return s.status();
  return SubmitResult{s->job_ids, s->array_job_id};
}

Status Client::cancel(uint64_t job_id, const std::string& reason) {
  auto r = peer("scheduler").call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, job_id, reason.empty() ? nullptr : reason.c_str()).Union();
  });
  return r.status();
}

Status Client::hold(uint64_t job_id) {
  return peer("scheduler")
      .call(fb::RequestBody::HoldJob,
            [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateHoldJob(b, job_id).Union(); })
      .status();
}

Status Client::release(uint64_t job_id) {
  return peer("scheduler")
      .call(fb::RequestBody::ReleaseJob,
            [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateReleaseJob(b, job_id).Union(); })
      .status();
}

Status Client::requeue(uint64_t job_id) {
  return peer("scheduler")
      .call(fb::RequestBody::RequeueJob,
            [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateRequeueJob(b, job_id).Union(); })
      .status();
}

Result<fb::JobRecordT> Client::status(uint64_t job_id) {
  auto& p = peer("scheduler");
  auto r = p.call(fb::RequestBody::GetJob,
                  [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetJob(b, job_id).Union(); });
  return unpack<fb::JobRecord>(r, p.peer());
}

Result<JobRef> parse_job_ref(std::string_view text) {
  auto bad = [&] {
    return Status::invalid("'" + std::string(text) + "' is not a job id (N, or ARRAY_INDEX such as 12_3)");
  };
  auto number = [](std::string_view s, uint64_t max) -> std::optional<uint64_t> {
    if (s.empty() || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > max) return std::nullopt;
    return v;
  };
  JobRef ref;
  ref.text = std::string(text);
  auto us = text.find('_');
  auto id = number(text.substr(0, us), UINT64_MAX / 10);
  if (!id || *id == 0) return bad();
  ref.id = *id;
  if (us != std::string_view::npos) {
    auto index = number(text.substr(us + 1), INT32_MAX);
    if (!index) return bad();
    ref.index = static_cast<int32_t>(*index);
  }
  return ref;
}

std::string job_name_of(const fb::JobRecordT& job) {
  if (job.array_job_id == 0 || job.array_index < 0) return std::to_string(job.job_id);
  return std::to_string(job.array_job_id) + "_" + std::to_string(job.array_index);
}

Result<std::vector<fb::JobRecordT>> Client::jobs_named(const JobRef& ref) {
  auto tasks = [&]() -> Result<std::vector<fb::JobRecordT>> {
    JobFilter f;
    f.array_job_id = ref.id;
    f.limit = 1'000'000;
    auto l = list(f);
    if (!l) return l.status();
    // Only the array's own tasks, whatever the answer holds.
    l->erase(std::remove_if(l->begin(), l->end(), [&ref](auto& j) { return j.array_job_id != ref.id; }), l->end());
    std::sort(l->begin(), l->end(), [](auto& a, auto& b) { return a.array_index < b.array_index; });
    return l;
  };
  if (ref.index) {
    auto all = tasks();
    if (!all) return all.status();
    if (all->empty()) return Status::not_found("job " + ref.text + ": there is no job array " + std::to_string(ref.id));
    for (auto& j : *all) {
      if (j.array_index == *ref.index) return std::vector<fb::JobRecordT>{std::move(j)};
    }
    return Status::not_found("job " + ref.text + ": array " + std::to_string(ref.id) + " has no task with index " +
                             std::to_string(*ref.index));
  }
  auto one = status(ref.id);
  if (one) return std::vector<fb::JobRecordT>{std::move(*one)};
  if (one.status().code() != ErrorCode::NotFound) return one.status();
  // Not a job: perhaps an array, named by its own id.
  auto all = tasks();
  if (!all) return all.status();
  if (all->empty()) return one.status();
  return all;
}

Result<std::vector<fb::JobRecordT>> Client::list(const JobFilter& f) {
  // The scheduler answers in pages under a byte budget; follow them until
  // the filter's limit or the last page.
  std::vector<fb::JobRecordT> out;
  uint64_t after = 0;
  for (;;) {
    auto page = list_page(f, after, static_cast<uint32_t>(f.limit - out.size()));
    if (!page) return page.status();
    for (auto& j : page->jobs) out.push_back(std::move(*j));
    if (!page->truncated || out.size() >= f.limit) break;
    if (page->next_after_job_id <= after) {
      return Status::internal("the scheduler's list of jobs did not move on past job " +
                              std::to_string(page->next_after_job_id) +
                              "; are ty and the scheduler of the same version?");
    }
    after = page->next_after_job_id;
  }
  return out;
}

Result<fb::JobListT> Client::list_page(const JobFilter& f, uint64_t after_job_id, uint32_t limit) {
  auto& p = peer("scheduler");
  auto r = p.call(fb::RequestBody::QueryJobs, [&](flatbuffers::FlatBufferBuilder& b) {
    std::vector<uint8_t> states;
    for (auto s : f.states) states.push_back(static_cast<uint8_t>(s));
    auto sv = b.CreateVector(states);
    auto user = b.CreateString(f.user);
    auto account = b.CreateString(f.account);
    auto experiment = b.CreateString(f.experiment);
    fb::QueryJobsBuilder q(b);
    q.add_states(flatbuffers::Offset<flatbuffers::Vector<fb::JobState>>(sv.o));
    q.add_user(user);
    q.add_account(account);
    q.add_experiment(experiment);
    q.add_array_job_id(f.array_job_id);
    q.add_limit(limit);
    q.add_after_job_id(after_job_id);
    q.add_page_bytes(f.page_bytes);
    return q.Finish().Union();
  });
  return unpack<fb::JobList>(r, p.peer());
}

Status Client::logs(uint64_t job_id, const LogOptions& options, const std::function<void(std::string_view)>& sink) {
  const int64_t deadline = options.timeout.count() > 0 ? monotonic_ms() + options.timeout.count() : INT64_MAX;
  auto rec = status(job_id);
  if (!rec) return rec.status();
  while (rec->nodes.empty()) {
    std::string state = fb::EnumNameJobState(rec->state);
    if (is_terminal(rec->state)) {
      return Status::failed_precondition("job " + std::to_string(job_id) + " never ran (" + state +
                                         (rec->reason.empty() ? "" : ": " + rec->reason) + "); it has no log");
    }
    if (!options.follow) {
      return Status::failed_precondition("job " + std::to_string(job_id) + " has not started yet (" + state +
                                         (rec->reason.empty() ? "" : ": " + rec->reason) +
                                         "); use -f to wait for it");
    }
    if (monotonic_ms() >= deadline) return Status(ErrorCode::DeadlineExceeded, "job did not start in time");
    std::this_thread::sleep_for(milliseconds(500));
    rec = status(job_id);
    if (!rec) return rec.status();
  }
  const std::string node = rec->nodes.front();  // rank 0 of a multi-node job
  auto all = nodes();
  if (!all) return all.status();
  std::string endpoint;
  for (auto& n : *all) {
    if (n.node && n.node->name == node) endpoint = n.node->agent_endpoint;
  }
  if (endpoint.empty()) {
    return Status::unavailable("the resource broker knows no agent endpoint for node " + node + " (job " +
                               std::to_string(job_id) + " ran there); is its agent registered?");
  }
  auto& agent = peer("agent " + node + " " + connectable(endpoint));
  uint64_t offset = options.offset;
  while (true) {
    auto r = agent.call(fb::RequestBody::ReadLog, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateReadLog(b, job_id, options.attempt, options.stderr_stream, offset, 1u << 20).Union();
    });
    auto chunk = unpack<fb::LogChunk>(r, "the agent of node " + node);
    if (!chunk) {
      if (chunk.status().code() == ErrorCode::Unavailable) {
        return Status::unavailable("the agent of node " + node + " at " + endpoint + " did not answer; is it running?");
      }
      return chunk.status();
    }
    if (!chunk->data.empty()) {
      sink(std::string_view(reinterpret_cast<const char*>(chunk->data.data()), chunk->data.size()));
    }
    offset = chunk->offset + chunk->data.size();
    if (offset < chunk->size && !chunk->data.empty()) continue;  // more is there already
    if (!options.follow || chunk->finished) return Status::success();
    if (monotonic_ms() >= deadline) return Status(ErrorCode::DeadlineExceeded, "stopped following after the timeout");
    std::this_thread::sleep_for(milliseconds(200));
  }
}

// ---- nodes ----

Result<std::vector<fb::NodeStatusT>> Client::nodes() {
  auto& p = peer("broker");
  std::vector<fb::NodeStatusT> out;
  std::string after;
  for (;;) {  // every page
    auto r = p.call(fb::RequestBody::ListNodes, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateListNodesDirect(b, after.empty() ? nullptr : after.c_str()).Union();
    });
    auto list = unpack<fb::NodeList>(r, p.peer());
    if (!list) return list.status();
    for (auto& n : list->nodes) out.push_back(std::move(*n));
    if (!list->truncated || list->next_after_name <= after) return out;
    after = std::move(list->next_after_name);
  }
}

Status Client::drain(const std::string& node, const std::string& reason) {
  return peer("broker")
      .call(fb::RequestBody::DrainNode,
            [&](flatbuffers::FlatBufferBuilder& b) {
              return fb::CreateDrainNodeDirect(b, node.c_str(), true, reason.c_str()).Union();
            })
      .status();
}

Status Client::undrain(const std::string& node) {
  return peer("broker")
      .call(fb::RequestBody::DrainNode,
            [&](flatbuffers::FlatBufferBuilder& b) {
              return fb::CreateDrainNodeDirect(b, node.c_str(), false, "").Union();
            })
      .status();
}

// ---- metrics ----

Result<fb::MetricSummariesT> Client::metrics(uint64_t job_id) {
  auto& p = peer("metrics");
  fb::MetricSummariesT all;
  all.job_id = job_id;
  std::string after;
  for (;;) {  // every page
    auto r = p.call(fb::RequestBody::ListMetrics, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateListMetricsDirect(b, job_id, after.empty() ? nullptr : after.c_str()).Union();
    });
    auto page = unpack<fb::MetricSummaries>(r, p.peer());
    if (!page) return page.status();
    for (auto& m : page->metrics) all.metrics.push_back(std::move(m));
    if (!page->truncated || page->next_after_name <= after) return all;
    after = std::move(page->next_after_name);
  }
}

Result<fb::SeriesT> Client::series(uint64_t job_id, const std::string& metric, uint32_t max_points, int64_t from_step,
                                   int64_t to_step) {
  auto& p = peer("metrics");
  auto r = p.call(fb::RequestBody::QuerySeries, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateQuerySeriesDirect(b, job_id, metric.c_str(), from_step, to_step, max_points).Union();
  });
  return unpack<fb::Series>(r, p.peer());
}

Result<fb::ComparisonT> Client::compare(const std::string& experiment, const std::vector<uint64_t>& job_ids,
                                        const std::string& metric, std::optional<bool> maximize_flag) {
  bool maximize = maximize_flag.value_or(default_goal(metric) == MetricGoal::kMax);
  auto& p = peer("metrics");
  auto r = p.call(fb::RequestBody::CompareRuns, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCompareRunsDirect(b, experiment.c_str(), &job_ids, metric.c_str(), maximize).Union();
  });
  return unpack<fb::Comparison>(r, p.peer());
}

// ---- billing ----

Result<fb::UsageReportT> Client::usage(const UsageQuery& q) {
  auto& p = peer("billing");
  fb::UsageReportT all;
  std::string after;
  for (;;) {  // every page
    auto r = p.call(fb::RequestBody::QueryUsage, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQueryUsageDirect(b, q.account.c_str(), q.user.c_str(), q.job_id, q.since_ns, q.until_ns,
                                        q.group_by.c_str(), after.empty() ? nullptr : after.c_str())
          .Union();
    });
    auto page = unpack<fb::UsageReport>(r, p.peer());
    if (!page) return page.status();
    all.currency = std::move(page->currency);
    for (auto& row : page->rows) all.rows.push_back(std::move(row));
    if (!page->truncated || page->next_after.empty() || page->next_after == after) return all;
    after = std::move(page->next_after);
  }
}

Result<fb::InvoiceT> Client::invoice(const std::string& account, const std::string& month) {
  auto& p = peer("billing");
  auto r = p.call(fb::RequestBody::GetInvoice, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateGetInvoiceDirect(b, account.c_str(), month.c_str()).Union();
  });
  return unpack<fb::Invoice>(r, p.peer());
}

Result<fb::EstimateT> Client::estimate(const fb::JobSpecT& spec) {
  auto& p = peer("billing");
  auto r = p.call(fb::RequestBody::EstimateCost, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateEstimateCost(b, fb::CreateJobSpec(b, &spec)).Union();
  });
  return unpack<fb::Estimate>(r, p.peer());
}

Result<fb::CloudReportT> Client::cloud_estimate(const fb::JobSpecT& spec) {
  auto& p = peer("broker");
  auto r = p.call(fb::RequestBody::CloudStatus, [&](flatbuffers::FlatBufferBuilder& b) {
    auto s = fb::CreateJobSpec(b, &spec);
    fb::CloudStatusBuilder q(b);
    q.add_estimate_for(s);
    return q.Finish().Union();
  });
  return unpack<fb::CloudReport>(r, p.peer());
}

Status Client::set_budget(const Budget& budget) {
  return peer("billing")
      .call(fb::RequestBody::SetBudget,
            [&](flatbuffers::FlatBufferBuilder& b) {
              return fb::CreateSetBudgetDirect(b, budget.account.c_str(), budget.monthly_micros, budget.soft_percent,
                                               budget.hard, budget.stop_running)
                  .Union();
            })
      .status();
}

Result<fb::PongT> Client::ping(const std::string& service) {
  auto& p = peer(service);
  auto r = p.call(fb::RequestBody::Ping, [](flatbuffers::FlatBufferBuilder& b) { return fb::CreatePing(b).Union(); });
  return unpack<fb::Pong>(r, p.peer());
}

}  // namespace trainyard::client
