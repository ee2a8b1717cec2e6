#include "shell.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "config_keys.h"
#include "job_store.h"
#include "storage/keys.h"

namespace trainyard::scheduler {

using storage::Key;
using storage::KeyReader;

namespace {

constexpr std::string_view kNextJobId = "next_job_id";

}  // namespace

storage::Options SchedulerShell::store_options(const Options& o) {
  return service_store({"jobs", "specs", "nodes", "leases", "accounts", "meta", "notify",
                        security::DirectoryFeed::kColumnFamily},
                       o.durability);
}

SchedulerShell::SchedulerShell(const ServiceEnv& env, ShellOptions options)
    : ctx_(env.ctx),
      options_(std::move(options)),
      clock_(env.clock),
      store_(env.store),
      jobs_cf_(store_.cf("jobs")),
      specs_cf_(store_.cf("specs")),
      nodes_cf_(store_.cf("nodes")),
      leases_cf_(store_.cf("leases")),
      accounts_cf_(store_.cf("accounts")),
      meta_cf_(store_.cf("meta")),
      core_(options_.core, make_policy(options_.policy, options_.core.fairshare)),
      runtime_(env.runtime) {
  restore();
  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.trust.directory_owner);
  server_ = std::make_unique<rpc::Server>(ctx_, options_.endpoint, "scheduler");
  bus::PublisherOptions po;
  po.instance = options_.instance;
  po.bus_endpoints = options_.bus_frontend;
  publisher_ = std::make_unique<bus::Publisher>(ctx_, store_, *server_, po, clock_);
  bus::SubscriberOptions so;
  so.name = "scheduler";
  so.bus_endpoints = options_.bus_backend;
  so.prefixes = {"node.", "lease.", "run.", "account.", "cloud.", std::string(security::kDirectoryPrefix)};
  subscriber_ = std::make_unique<bus::Subscriber>(ctx_, store_, so,
                                                  [this](const bus::Event& e, storage::Batch& b) { on_event(e, b); });
  broker_ = std::make_unique<rpc::AsyncClient>(ctx_, "broker", options_.broker_endpoint, options_.allocate_timeout_ms,
                                               "service:" + options_.broker_instance);
  register_handlers();
  audit_ = std::make_unique<security::AuditTrail>(*publisher_, runtime_, clock_, options_.instance,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(*server_);
  notifier_ = std::make_unique<Notifier>(options_.notify, store_, store_.cf("notify"));
  attach();
}

SchedulerShell::~SchedulerShell() = default;

void SchedulerShell::attach() {
  runtime_.every(5000, [this] { publish_metrics(runtime_.batch()); });

  runtime_.watch(server_->socket(), [this] { server_->poll_in(); });
  subscriber_->attach(runtime_);
  broker_->attach(runtime_);
  // Settle before the publisher seals its stream rows: the events settle
  // appends must be in the same batch.
  runtime_.before_commit([this] { settle(); });
  publisher_->attach(runtime_);
  runtime_.after_commit([this] { server_->flush(); });
  runtime_.after_commit([this] { send_to_broker(); });
  runtime_.after_commit([this] { notifier_->committed(); });
  runtime_.every(options_.cycle_ms, [this] {
    int64_t now = clock_.now_ns();
    core_.tick(now);
    if (size_t n = core_.purge_ended(now)) spdlog::info("purged {} jobs that ended over {} ago", n,
                                                        retention_text(options_.core.job_retention_s));
    if (resend_releases_) {
      resend_releases_ = false;
      core_.resend_releases();
    }
    core_.force_full();
    notifier_->reap(runtime_.batch());
  });
}

void SchedulerShell::publish_metrics(storage::Batch& batch) {
  auto g = audit_->gauges();
  auto n = notifier_->counts();
  g.emplace_back("notifications_sent", static_cast<double>(n.sent));
  g.emplace_back("notifications_failed", static_cast<double>(n.failed));
  g.emplace_back("notifications_pending", static_cast<double>(n.pending));
  g.emplace_back("directory_version", static_cast<double>(directory_->current().version));
  g.emplace_back("events_published", static_cast<double>(publisher_->stats().published));
  bus::publish_ops_metrics(*publisher_, batch, "scheduler", options_.instance, g);
}

void SchedulerShell::restore() {
  if (auto v = value_or_throw(store_.get(meta_cf_, kNextJobId))) {
    stored_next_id_ = storage::decode_u64(*v);
    core_.set_next_job_id(stored_next_id_);
  }
  size_t nodes = 0, leases = 0, bad = 0;
  restore_cluster(&nodes, &leases, &bad);
  size_t jobs = restore_jobs(&bad);
  restore_carried_usage(&bad);
  if (bad) spdlog::error("{} stored records in {} could not be read and were skipped", bad, store_.path());
  core_.finish_restore(clock_.now_ns());
  stored_next_id_ = std::max(stored_next_id_, core_.next_job_id());
  spdlog::info("restored {} jobs, {} nodes, {} leases from {}", jobs, nodes, leases, store_.path());
}

void SchedulerShell::restore_carried_usage(size_t* bad) {
  std::string prefix = storage::Key().str(kCarriedUsagePrefix).bytes();
  value_or_throw(
      store_.scan(meta_cf_, prefix, storage::prefix_end(prefix), [&](std::string_view k, std::string_view v) {
        if (auto row = decode_carried_usage(k, v)) {
          core_.restore_carried_usage(std::move(row->account), std::move(row->gpu_type), row->usage);
        } else {
          ++*bad;
        }
        return true;
      }));
}

void SchedulerShell::restore_cluster(size_t* nodes, size_t* leases, size_t* bad) {
  value_or_throw(store_.scan(nodes_cf_, "", "", [&](std::string_view, std::string_view v) {
    const fb::NodeInfo* n = v.size() > 2 ? verified_root<fb::NodeInfo>(v.substr(2)) : nullptr;
    if (!n) {
      ++*bad;
      return true;
    }
    fb::NodeInfoT info;
    n->UnPackTo(&info);
    core_.restore_node(info, v[0] != 0, v[1] != 0);
    ++*nodes;
    return true;
  }));
  value_or_throw(store_.scan(leases_cf_, "", "", [&](std::string_view, std::string_view v) {
    const auto* g = verified_root<fb::LeaseGranted>(v);
    if (!g) {
      ++*bad;
      return true;
    }
    core_.restore_lease(grant_of(*g));
    ++*leases;
    return true;
  }));
  value_or_throw(store_.scan(accounts_cf_, "", "", [&](std::string_view k, std::string_view) {
    core_.restore_blocked(k);
    return true;
  }));
}

size_t SchedulerShell::restore_jobs(size_t* bad) {
  size_t jobs = 0;
  // Array specs first: their tasks store none of their own.
  std::unordered_map<JobId, std::shared_ptr<const fb::JobSpecT>> specs;
  value_or_throw(store_.scan(specs_cf_, "", "", [&](std::string_view k, std::string_view v) {
    auto spec = decode_spec(v);
    if (spec && k.size() == 8) {
      specs[KeyReader(k).u64()] = std::move(spec);
    } else {
      ++*bad;
    }
    return true;
  }));
  // Tasks stored before arrays had a spec row carry their own copy: the
  // first one becomes the array's row, and all of them share it.
  storage::Batch upgrade;
  value_or_throw(store_.scan(jobs_cf_, "", "", [&](std::string_view, std::string_view v) {
    auto j = decode_job(v);
    if (j && j->array_job_id) {
      auto it = specs.find(j->array_job_id);
      if (it != specs.end()) {
        j->spec = it->second;
      } else if (j->spec) {
        specs[j->array_job_id] = j->spec;
        upgrade.put(specs_cf_, Key().u64(j->array_job_id), encode_spec(*j->spec));
      }
    }
    if (!j || !j->spec) {
      ++*bad;
      return true;
    }
    core_.restore_job(std::move(*j));
    ++jobs;
    return true;
  }));
  if (!upgrade.empty()) {
    auto st = store_.commit(upgrade);
    if (!st) spdlog::error("storing the specs of {} arrays failed: {}", upgrade.count(), st.to_string());
  }
  return jobs;
}

void SchedulerShell::register_handlers() {
  using fb::RequestBody;
  auto bind = [this](void (SchedulerShell::*fn)(const fb::Request&, rpc::Responder&)) {
    return [this, fn](const fb::Request& req, rpc::Responder& r) { (this->*fn)(req, r); };
  };
  server_->on(RequestBody::SubmitJob, bind(&SchedulerShell::on_submit));
  server_->on(RequestBody::CancelJob, bind(&SchedulerShell::on_cancel));
  server_->on(RequestBody::HoldJob, bind(&SchedulerShell::on_hold));
  server_->on(RequestBody::RequeueJob, bind(&SchedulerShell::on_requeue));
  server_->on(RequestBody::ReleaseJob, bind(&SchedulerShell::on_release));
  server_->on(RequestBody::GetJob, bind(&SchedulerShell::on_get));
  server_->on(RequestBody::QueryJobs, bind(&SchedulerShell::on_query));
  server_->on(RequestBody::Ping, bind(&SchedulerShell::on_ping));
}

// --- settle: store, publish, then talk to the broker ---------------------------

void SchedulerShell::settle() {
  int64_t now = clock_.now_ns();
  if (core_.wants_cycle()) {
    size_t placed = core_.cycle(now);
    if (placed) spdlog::debug("cycle placed {} jobs ({} still waiting)", placed, core_.queued());
  }
  auto& batch = runtime_.batch();
  if (core_.next_job_id() != stored_next_id_) {
    stored_next_id_ = core_.next_job_id();
    batch.put(meta_cf_, kNextJobId, storage::encode_u64(stored_next_id_));
  }
  auto& out = core_.output();
  if (out.empty()) return;
  Output o = core_.take_output();
  for (JobId id : o.dirty) {
    if (const Job* j = core_.job(id)) batch.put(jobs_cf_, Key().u64(id), encode_job(store_fbb_, *j));
  }
  publish_submitted(o.submitted, batch);
  for (JobId id : o.purged) batch.del(jobs_cf_, Key().u64(id));
  for (JobId id : o.purged_arrays) batch.del(specs_cf_, Key().u64(id));
  if (o.carried_usage_changed) {
    for (auto& [key, u] : core_.carried_usage()) {
      batch.put(meta_cf_, carried_usage_key(key.first, key.second), carried_usage_value(u));
    }
  }
  for (auto& c : o.changes) {
    const Job* j = core_.job(c.job);
    if (!j) continue;
    auto& b = publisher_->builder();
    auto reason = b.CreateString(c.reason);
    auto nodes = b.CreateVectorOfStrings(j->nodes);
    auto account = b.CreateString(j->spec->account);
    auto user = b.CreateString(j->spec->user);
    auto ev = fb::CreateJobStateChanged(b, c.job, c.from, c.to, reason, nodes, c.exit_code, c.attempt, account, user);
    publisher_->append(batch, "job.state", fb::Payload::JobStateChanged, ev.Union());
    if (auto n = notice_for(*j, c.from, c.to, c.reason, c.exit_code, now)) notifier_->add(*n, batch);
  }
  for (auto& a : o.allocations) to_allocate_.push_back(std::move(a));
  for (auto& r : o.releases) to_release_.push_back(std::move(r));
}

void SchedulerShell::publish_submitted(const std::vector<JobId>& submitted, storage::Batch& batch) {
  // An array's spec is stored once, and only its first task's event
  // carries it whole: the others carry a summary (task_summary), so an
  // array of N tasks costs O(spec + N) in the batch, not O(spec * N).
  JobId array = 0;
  fb::JobSpecT summary;
  for (JobId id : submitted) {
    const Job* j = core_.job(id);
    if (!j) continue;
    const fb::JobSpecT* spec = j->spec.get();
    if (j->array_job_id && j->array_job_id == array) {
      spec = &summary;
    } else if (j->array_job_id) {
      array = j->array_job_id;
      summary = task_summary(*j->spec);
      batch.put(specs_cf_, Key().u64(array), encode_spec(*j->spec));
    }
    auto& b = publisher_->builder();
    auto s = fb::CreateJobSpec(b, spec);
    auto ev = fb::CreateJobSubmitted(b, j->id, s, j->array_job_id, j->array_index, j->submit_time_ns);
    publisher_->append(batch, "job.submitted", fb::Payload::JobSubmitted, ev.Union());
  }
}

void SchedulerShell::send_to_broker() {
  // Only now, after the commit: the broker never hears of a job (or an
  // attempt) the scheduler could forget in a crash.
  for (auto& a : to_allocate_) send_allocate(a);
  to_allocate_.clear();
  for (auto& r : to_release_) send_release(r);
  to_release_.clear();
}

void SchedulerShell::send_allocate(const AllocateRequest& a) {
  const Job* j = core_.job(a.job);
  if (!j || a.nodes.empty()) return;
  auto spec = j->spec;
  if (!a.partition.empty() && a.partition != spec->partition) {
    // "-p a,b": the run is told the partition it got, as Slurm's.
    auto one = std::make_shared<fb::JobSpecT>(*spec);
    one->partition = a.partition;
    spec = one;
  }
  int32_t index = j->array_index;
  uint64_t array_job = j->array_job_id;
  broker_->send(
      fb::RequestBody::Allocate,
      [&](flatbuffers::FlatBufferBuilder& b) {
        auto s = fb::CreateJobSpec(b, spec.get());
        if (a.nodes.size() == 1) {
          auto& n = a.nodes[0];
          auto node = b.CreateString(n.node);
          auto gpus = b.CreateVector(n.gpus);
          return fb::CreateAllocate(b, a.job, a.attempt, node, gpus, n.cpus, n.memory_mb, s, index, 0, array_job)
              .Union();
        }
        std::vector<flatbuffers::Offset<fb::Placement>> ps;
        for (auto& n : a.nodes) {
          ps.push_back(fb::CreatePlacement(b, b.CreateString(n.node), b.CreateVector(n.gpus), n.cpus, n.memory_mb));
        }
        auto placements = b.CreateVector(ps);
        return fb::CreateAllocate(b, a.job, a.attempt, 0, 0, a.nodes[0].cpus, a.nodes[0].memory_mb, s, index, placements,
                                  array_job)
            .Union();
      },
      [this, job = a.job, attempt = a.attempt](Result<rpc::Reply> reply) {
        int64_t now = clock_.now_ns();
        const fb::Allocated* al = reply ? reply->body<fb::Allocated>() : nullptr;
        if (!al) {
          Status why = reply ? Status::internal("the broker's reply to Allocate has no Allocated body") : reply.status();
          if (why.code() == ErrorCode::Conflict) {
            spdlog::debug("Allocate of job {} refused: {}", job, why.message());
          } else if (monotonic_ms() - last_broker_warning_ms_ > 5000) {
            last_broker_warning_ms_ = monotonic_ms();
            spdlog::warn("Allocate of job {} failed: {}", job, why.to_string());
          }
          core_.allocate_failed(job, attempt, why, now);
          return;
        }
        std::vector<uint64_t> ids;
        if (al->lease_ids() && al->lease_ids()->size() > 0) {
          ids.assign(al->lease_ids()->begin(), al->lease_ids()->end());
        } else {
          ids.push_back(al->lease_id());
        }
        core_.allocated(job, attempt, ids, now);
      });
}

void SchedulerShell::send_release(const ReleaseRequest& rel) {
  broker_->send(
      fb::RequestBody::ReleaseLease,
      [&](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateReleaseLeaseDirect(b, rel.lease_id, rel.kill, rel.reason.c_str(), rel.grace_s, rel.cause)
            .Union();
      },
      [this, lease = rel.lease_id, job = rel.job](Result<rpc::Reply> reply) {
        if (reply) return;
        auto code = reply.status().code();
        if (code == ErrorCode::NotFound || code == ErrorCode::FailedPrecondition) return;  // already gone
        spdlog::warn("ReleaseLease {} of job {} failed: {}; asking again", lease, job, reply.status().to_string());
        resend_releases_ = true;
      });
}

}  // namespace trainyard::scheduler
