#include "shell.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "config_keys.h"
#include "job_store.h"
#include "storage/keys.h"
#include "wire/fb_str.h"

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
  runtime_.every(5000, [this] {
    auto g = audit_->gauges();
    auto n = notifier_->counts();
    g.emplace_back("notifications_sent", static_cast<double>(n.sent));
    g.emplace_back("notifications_failed", static_cast<double>(n.failed));
    g.emplace_back("notifications_pending", static_cast<double>(n.pending));
    g.emplace_back("directory_version", static_cast<double>(directory_->current().version));
    g.emplace_back("events_published", static_cast<double>(publisher_->stats().published));
    bus::publish_ops_metrics(*publisher_, runtime_.batch(), "scheduler", options_.instance, g);
  });

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

SchedulerShell::~SchedulerShell() = default;

void SchedulerShell::restore() {
  if (auto v = store_.get(meta_cf_, kNextJobId)) {
    stored_next_id_ = storage::decode_u64(*v);
    core_.set_next_job_id(stored_next_id_);
  }
  size_t nodes = 0, leases = 0, bad = 0;
  restore_cluster(&nodes, &leases, &bad);
  size_t jobs = restore_jobs(&bad);
  if (bad) spdlog::error("{} stored records in {} could not be read and were skipped", bad, store_.path());
  core_.finish_restore(clock_.now_ns());
  stored_next_id_ = std::max(stored_next_id_, core_.next_job_id());
  spdlog::info("restored {} jobs, {} nodes, {} leases from {}", jobs, nodes, leases, store_.path());
}

void SchedulerShell::restore_cluster(size_t* nodes, size_t* leases, size_t* bad) {
  store_.scan(nodes_cf_, "", "", [&](std::string_view, std::string_view v) {
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
  });
  store_.scan(leases_cf_, "", "", [&](std::string_view, std::string_view v) {
    const auto* g = verified_root<fb::LeaseGranted>(v);
    if (!g) {
      ++*bad;
      return true;
    }
    core_.restore_lease(grant_of(*g));
    ++*leases;
    return true;
  });
  store_.scan(accounts_cf_, "", "", [&](std::string_view k, std::string_view) {
    core_.restore_blocked(k);
    return true;
  });
}

size_t SchedulerShell::restore_jobs(size_t* bad) {
  size_t jobs = 0;
  // Array specs first: their tasks store none of their own.
  std::unordered_map<JobId, std::shared_ptr<const fb::JobSpecT>> specs;
  store_.scan(specs_cf_, "", "", [&](std::string_view k, std::string_view v) {
    auto spec = decode_spec(v);
    if (spec && k.size() == 8) {
      specs[KeyReader(k).u64()] = std::move(spec);
    } else {
      ++*bad;
    }
    return true;
  });
  // Tasks stored before arrays had a spec row carry their own copy: the
  // first one becomes the array's row, and all of them share it.
  storage::Batch upgrade;
  store_.scan(jobs_cf_, "", "", [&](std::string_view, std::string_view v) {
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
  });
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

// --- requests ----------------------------------------------------------------

void SchedulerShell::on_submit(const fb::Request& req, rpc::Responder& r) {
  auto* body = req.body_as_SubmitJob();
  if (!body || !body->spec()) {
    r.error(Status::invalid("spec: missing; SubmitJob needs a job spec"));
    return;
  }
  fb::JobSpecT spec;
  body->spec()->UnPackTo(&spec);
  // A user submits as themselves (as sbatch takes the uid, not a claim),
  // and only to accounts that list them.
  auto who = caller(r);
  if (who.enforced() && who.user()) spec.user = std::string(who.name());
  // A job that names no account goes to the user's default account.
  if (spec.account.empty()) spec.account = directory_->current().default_account(spec.user);
  if (who.enforced() && !who.member_of(spec.account)) {
    r.error(who.refuse("account membership", "submit to account " + spec.account));
    return;
  }
  auto res = core_.submit(spec, clock_.now_ns(), body->hold());
  if (!res) {
    r.error(res.status());
    return;
  }
  // The reply leaves after this iteration's commit: an ack means durable.
  auto& b = r.builder();
  auto ids = b.CreateVector(res->job_ids);
  r.ok(fb::ReplyBody::Submitted, fb::CreateSubmitted(b, ids, res->array_job_id).Union());
}

Status SchedulerShell::may_manage(rpc::Responder& r, JobId id, std::string_view what) const {
  auto c = caller(r);
  if (!c.enforced()) return Status::success();
  std::vector<JobId> ids{id};
  if (auto* tasks = core_.array_tasks(id)) ids = *tasks;
  std::string others;  // jobs of other users the caller acts on (as admin or coordinator)
  for (JobId t : ids) {
    const Job* j = core_.job(t);
    if (!j || !j->spec || (c.user() && c.name() == j->spec->user)) continue;
    if (!c.may_manage_job(j->spec->user, j->spec->account)) {
      return c.refuse("job owner", std::string(what) + " job " + std::to_string(t) + " of user:" + j->spec->user);
    }
    if (c.user() && others.empty()) others = "job " + std::to_string(t) + " of user:" + j->spec->user;
  }
  if (!others.empty()) r.audit(std::string(what) + " " + others + (ids.size() > 1 ? " (array " + std::to_string(id) + ")" : ""));
  return Status::success();
}

void SchedulerShell::on_cancel(const fb::Request& req, rpc::Responder& r) {
  auto* body = req.body_as_CancelJob();
  if (auto s = may_manage(r, body->job_id(), "cancel"); !s) return r.error(s);
  auto s = core_.cancel(body->job_id(), str(body->reason()), clock_.now_ns());
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

void SchedulerShell::on_hold(const fb::Request& req, rpc::Responder& r) {
  if (auto s = may_manage(r, req.body_as_HoldJob()->job_id(), "hold"); !s) return r.error(s);
  auto s = core_.hold(req.body_as_HoldJob()->job_id(), clock_.now_ns());
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

void SchedulerShell::on_release(const fb::Request& req, rpc::Responder& r) {
  if (auto s = may_manage(r, req.body_as_ReleaseJob()->job_id(), "release"); !s) return r.error(s);
  auto s = core_.release(req.body_as_ReleaseJob()->job_id(), clock_.now_ns());
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

void SchedulerShell::on_requeue(const fb::Request& req, rpc::Responder& r) {
  JobId id = req.body_as_RequeueJob()->job_id();
  if (auto s = may_manage(r, id, "requeue"); !s) return r.error(s);
  auto s = core_.requeue(id, "requeued by " + std::string(caller(r).name().empty() ? "user" : caller(r).name()));
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

PriorityFactors SchedulerShell::factors_of(const Job& j) const {
  // Factors mean something while a job waits; after that only its tier.
  if (j.state == JobState::Pending || j.state == JobState::Held) return core_.factors(j);
  PriorityFactors f;
  f.tier = j.tier;
  f.priority = core_.score(j);
  return f;
}

void SchedulerShell::on_ping(const fb::Request&, rpc::Responder& r) {
  auto& b = r.builder();
  r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(b, "scheduler", options_.instance.c_str(), "0.1.0").Union());
}

// --- events ------------------------------------------------------------------

// A job's history records when a change happened where it happened (the
// agent's clock for a run's start and end, the broker's for a lease), not
// when this scheduler heard of it: after a restart it may hear seconds late,
// and the history must still agree with what billing charged. Never later
// than now (a node's clock running ahead does not date the future).
static int64_t happened_at(int64_t event_ns, int64_t now_ns) {
  return event_ns > 0 ? std::min(event_ns, now_ns) : now_ns;
}

void SchedulerShell::on_event(const bus::Event& e, storage::Batch& batch) {
  int64_t now = clock_.now_ns();
  int64_t at = happened_at(e.time_ns(), now);
  if (directory_->apply(e, batch)) return;
  switch (e.type()) {
    case fb::Payload::NodeUp:
    case fb::Payload::NodeDown:
    case fb::Payload::NodeDrained:
      on_node_event(e, batch);
      return;
    case fb::Payload::CloudLease:
      on_cloud_lease(e);
      return;
    case fb::Payload::LeaseGranted: {
      Grant g = grant_of(*e.as<fb::LeaseGranted>());
      core_.lease_granted(g, at);
      batch.put(leases_cf_, Key().u64(g.lease_id), lease_value(g));
      return;
    }
    case fb::Payload::LeaseReleased: {
      auto* l = e.as<fb::LeaseReleased>();
      core_.lease_released(l->lease_id(), l->job_id(), at);
      batch.del(leases_cf_, Key().u64(l->lease_id()));
      return;
    }
    case fb::Payload::LeaseLost: {
      auto* l = e.as<fb::LeaseLost>();
      core_.lease_lost(l->lease_id(), l->job_id(), l->attempt(), str(l->reason()), at);
      batch.del(leases_cf_, Key().u64(l->lease_id()));
      return;
    }
    case fb::Payload::RunStarted: {
      auto* s = e.as<fb::RunStarted>();
      int64_t started = happened_at(s->start_time_ns(), at);
      core_.run_started(s->job_id(), s->attempt(), s->lease_id(), started, started);
      return;
    }
    case fb::Payload::RunFinished: {
      auto* f = e.as<fb::RunFinished>();
      core_.run_finished(RunEnd{f->job_id(), f->attempt(), f->lease_id(), f->outcome(), f->exit_code(), f->signal(),
                                str(f->reason())},
                         happened_at(f->end_time_ns(), at));
      return;
    }
    case fb::Payload::AccountBlocked: {
      // Billing's alone: any publisher may name a topic account.blocked on
      // its own stream (an agent unblocking an account, say).
      if (e.stream() != bus::stream_name("account.", options_.trust.directory_owner)) return;
      auto* a = e.as<fb::AccountBlocked>();
      std::string account = str(a->account());
      core_.account_blocked(account, a->blocked(), a->stop_running(), now);
      if (a->blocked()) {
        batch.put(accounts_cf_, account, "1");
      } else {
        batch.del(accounts_cf_, account);
      }
      return;
    }
    default:
      return;  // lease.revoked, account.warning...: nothing for the scheduler
  }
}

void SchedulerShell::on_node_event(const bus::Event& e, storage::Batch& batch) {
  switch (e.type()) {
    case fb::Payload::NodeUp: {
      auto* n = e.as<fb::NodeUp>()->node();
      if (!n || !n->name()) return;
      fb::NodeInfoT info;
      n->UnPackTo(&info);
      core_.node_up(info);
      auto existing = store_.get(nodes_cf_, info.name);
      bool drained = existing && existing->size() > 1 && (*existing)[1] != 0;
      batch.put(nodes_cf_, info.name, node_value(info, true, drained));
      if (drained) core_.node_drained(info.name, true);
      return;
    }
    case fb::Payload::NodeDown:
    case fb::Payload::NodeDrained: {
      std::string name;
      bool down = e.type() == fb::Payload::NodeDown;
      bool drained = false;
      if (down) {
        name = str(e.as<fb::NodeDown>()->name());
        core_.node_down(name);
      } else {
        auto* d = e.as<fb::NodeDrained>();
        name = str(d->name());
        drained = d->drained();
        core_.node_drained(name, drained);
      }
      // Keep the stored node's flags in step (the node's own record comes
      // with node.up).
      auto v = store_.get(nodes_cf_, name);
      if (v && v->size() > 2) {
        (*v)[down ? 0 : 1] = down ? 0 : (drained ? 1 : 0);
        batch.put(nodes_cf_, name, *v);
      }
      return;
    }
    default:
      return;
  }
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
