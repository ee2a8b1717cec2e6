// CloudShell's driver calls (the JSON contract of docs/cloud.md, made off
// the loop) and its requests (CloudStatus, CloudPause).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cloud_keys.h"
#include "cloud_records.h"
#include "cloud_shell.h"
#include "util/runtime.h"
#include "wire/fb_str.h"

namespace trainyard::broker {

namespace {

nlohmann::json tags(const std::string& broker, const std::string& pool, uint64_t lease) {
  nlohmann::json t = {{"trainyard-broker", broker}, {"trainyard-pool", pool}};
  if (lease) t["trainyard-lease"] = std::to_string(lease);
  return t;
}

LaunchOutcome launch_outcome(const Result<nlohmann::json>& reply) {
  LaunchOutcome o;
  if (!reply) {
    o.error_kind = "driver";
    o.message = reply.status().message();
    return o;
  }
  const auto& j = *reply;
  o.ok = j.value("ok", false) && j.contains("instance_id") && j["instance_id"].is_string();
  if (o.ok) {
    o.instance_id = j["instance_id"].get<std::string>();
    return o;
  }
  auto err = j.value("error", nlohmann::json::object());
  o.error_kind = err.is_object() ? err.value("kind", "driver") : "driver";
  o.message = err.is_object() ? err.value("message", j.dump()) : j.dump();
  return o;
}

std::vector<ListedInstance> listed_instances(const nlohmann::json& j) {
  std::vector<ListedInstance> out;
  auto all = j.value("instances", nlohmann::json::array());
  if (!all.is_array()) return out;
  for (const auto& i : all) {
    if (!i.is_object() || !i.contains("instance_id") || !i["instance_id"].is_string()) continue;
    ListedInstance li;
    li.instance_id = i["instance_id"].get<std::string>();
    li.state = i.contains("state") && i["state"].is_string() ? i["state"].get<std::string>() : "running";
    // A spot interruption notice (EC2's instance-action): when, in seconds
    // since the epoch, the cloud reclaims the instance.
    if (i.contains("interrupt_at") && i["interrupt_at"].is_number()) {
      double at = i["interrupt_at"].get<double>();
      if (at > 0 && at < 1e10) li.interrupt_at_ns = static_cast<int64_t>(at * 1e9);
    }
    auto t = i.value("tags", nlohmann::json::object());
    if (t.is_object()) {
      li.pool = t.value("trainyard-pool", "");
      try {
        li.lease = std::stoull(t.value("trainyard-lease", "0"));
      } catch (const std::exception&) {
        li.lease = 0;
      }
    }
    out.push_back(std::move(li));
  }
  return out;
}

}  // namespace

Result<nlohmann::json> CloudShell::request_for(const DriverCall& c) const {
  nlohmann::json r = {{"op", c.kind == DriverCall::kLaunch ? "launch" : c.kind == DriverCall::kTerminate ? "terminate" : "list"},
                      {"pool", c.pool}};
  const PoolConfig* p = core_.pool(c.pool);
  if (c.kind == DriverCall::kList) {
    r["tags"] = tags(boot_.instance, c.pool, 0);
    return r;
  }
  r["tags"] = tags(boot_.instance, c.pool, c.lease);
  if (c.kind == DriverCall::kTerminate) {
    r["instance_id"] = c.instance_id;
    return r;
  }
  const CloudLease* l = core_.lease(c.lease);
  nlohmann::json labels = nlohmann::json::object();
  for (auto& [k, v] : p->labels) labels[k] = v;
  r["client_token"] = fmt::format("{}-{}", boot_.instance, c.lease);
  r["spot"] = l && l->spot;
  r["node"] = {{"name", l ? l->node : std::string()}, {"gpu_type", p->gpu_type}, {"gpus", p->gpus_per_node},
               {"cpus", p->cpus}, {"memory_mb", p->memory_mb}, {"partition", p->partition}, {"labels", labels}};
  auto security = node_security(security::Site::current(), settings_.keys_dir(p->name), l ? l->node : "");
  if (!security) return security.status();
  r["bootstrap"] = {{"broker", boot_.broker()},
                    {"bus_frontend", boot_.bus_frontend},
                    {"bus_backend", boot_.bus_backend},
                    {"security", std::move(security).value()}};
  return r;
}

void CloudShell::start_call(const DriverCall& c) {
  const PoolConfig* p = core_.pool(c.pool);
  if (!p) return;
  uint64_t tag = next_tag_++;
  calls_[tag] = PendingCall{c, clock_.now_ns()};
  if (c.kind == DriverCall::kLaunch) ++stats_.launches;
  if (c.kind == DriverCall::kTerminate) ++(c.lease ? stats_.terminates : stats_.orphans_terminated);
  if (c.kind == DriverCall::kTerminate && c.lease == 0) {
    spdlog::warn("cloud: terminating orphan instance {} of pool {} (tagged, no live lease)", c.instance_id, c.pool);
  }
  auto request = request_for(c);
  if (!request) {
    // Not a driver's failure: the broker cannot make the call (a rented
    // node's key is missing), which an operator must fix.
    spdlog::error("cloud: cannot call pool {}'s driver: {}", c.pool, request.status().message());
    nlohmann::json refusal = {{"ok", false}, {"error", {{"kind", "config"}, {"message", request.status().message()}}}};
    runner_.answer(tag, std::move(refusal));
    return;
  }
  runner_.call(tag, p->driver, std::move(request).value());
}

void CloudShell::on_driver_replies() {
  auto replies = runner_.take();
  if (replies.empty()) return;
  CloudEffects fx;
  for (auto& r : replies) {
    auto it = calls_.find(r.tag);
    if (it == calls_.end()) continue;
    PendingCall pc = it->second;
    calls_.erase(it);
    handle_reply(pc, r.reply, fx);
  }
  apply(fx, runtime_->batch());
}

void CloudShell::handle_reply(const PendingCall& pc, const Result<nlohmann::json>& reply, CloudEffects& fx) {
  int64_t now = clock_.now_ns();
  const DriverCall& c = pc.call;
  if (!reply) {
    ++stats_.driver_failures;
    spdlog::warn("cloud: {} on pool {} failed: {}", c.kind == DriverCall::kList ? "list" : "a driver call", c.pool,
                 reply.status().to_string());
  }
  switch (c.kind) {
    case DriverCall::kLaunch: {
      auto o = launch_outcome(reply);
      if (!o.ok) ++stats_.launch_errors;
      core_.launched(c.lease, o, now, fx);
      break;
    }
    case DriverCall::kTerminate: {
      bool ok = reply && reply->value("ok", false);
      std::string msg = !reply ? reply.status().message() : reply->dump();
      if (!ok && reply) spdlog::warn("cloud: terminate of {} on pool {} refused: {}", c.instance_id, c.pool, msg);
      if (c.lease) core_.terminated(c.lease, ok, msg, now, fx);
      break;
    }
    case DriverCall::kList:
      if (reply && reply->value("ok", false)) {
        core_.listed(c.pool, listed_instances(*reply), pc.asked_ns, now, fx);
      } else {
        core_.call_failed(c, reply ? reply->dump() : reply.status().message(), now, fx);
      }
      break;
  }
}

void CloudShell::on_status(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_CloudStatus();
  std::string only = str(q->pool());
  if (!only.empty() && !core_.pool(only)) {
    r.error(Status::not_found(fmt::format("CloudStatus.pool: no pool named {}", only)));
    return;
  }
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::CloudPoolStatus>> pools;
  for (auto& p : core_.pools()) {
    if (!only.empty() && p.name != only) continue;
    const PoolState& s = core_.pool_state(p.name);
    std::string driver = p.driver.empty() ? std::string() : p.driver.front();
    int64_t wait = p.max_wait_before_burst_s >= 0 ? p.max_wait_before_burst_s : settings_.core.max_wait_before_burst_s;
    pools.push_back(fb::CreateCloudPoolStatusDirect(
        b, p.name.c_str(), driver.c_str(), p.gpu_type.c_str(), p.gpus_per_node, p.partition.c_str(), p.min_nodes,
        p.max_nodes, p.price_micros_per_hour, p.spot_price_micros_per_hour, s.paused, s.pause_reason.c_str(),
        s.backoff_until_ns, s.backoff_reason.c_str(), static_cast<uint32_t>(core_.live(p.name)),
        static_cast<uint32_t>(core_.in_state(p.name, CloudState::kReady)), wait));
  }
  std::vector<flatbuffers::Offset<fb::CloudLease>> leases;
  for (auto& [id, l] : core_.leases()) {
    if ((!only.empty() && l.pool != only) || (l.ended() && !q->ended())) continue;
    leases.push_back(build_cloud_lease(b, l));
  }
  std::vector<flatbuffers::Offset<fb::CloudRefusal>> refused = refusal_rows(b, core_.refused());
  auto pv = b.CreateVector(pools);
  auto lv = b.CreateVector(leases);
  auto rv = b.CreateVector(refused);
  auto why = b.CreateString(core_.pause_reason());
  auto e = estimate(q->estimate_for(), r.principal());
  auto ep = b.CreateString(e.pool);
  r.ok(fb::ReplyBody::CloudReport,
       fb::CreateCloudReport(b, core_.paused(), why, pv, lv, rv, ep, e.cost_micros, e.budget_left_micros,
                             static_cast<uint32_t>(core_.jobs_remembered()))
           .Union());
}

CloudShell::Estimate CloudShell::estimate(const fb::JobSpec* spec, std::string_view principal) const {
  Estimate e;
  if (!spec) return e;
  WaitingJob j;
  j.account = str(spec->account());
  if (j.account.empty() && principal.rfind("user:", 0) == 0) {
    j.account = settings_.directory().default_account(std::string(principal.substr(5)));
  }
  j.partition = str(spec->partition());
  j.gpu_type = str(spec->gpu_type());
  j.gpus_per_node = spec->gpus_per_node();
  j.nodes = std::max<uint32_t>(1, spec->nodes());
  j.time_limit_s = static_cast<int64_t>(std::min<uint64_t>(spec->time_limit_s(), INT64_MAX));
  int64_t now = clock_.now_ns();
  if (const PoolConfig* p = core_.cheapest_fit(j, now)) {
    e.pool = p->name;
    e.cost_micros = core_.estimated_cost_micros(*p, j, now);
  }
  if (auto it = core_.budgets_left().find(j.account); it != core_.budgets_left().end()) e.budget_left_micros = it->second;
  return e;
}

void CloudShell::on_pause(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_CloudPause();
  CloudEffects fx;
  std::string who = r.principal();
  if (auto c = security::Caller::of(who, settings_.directory()); c.enforced() && !c.operator_()) {
    r.error(c.refuse("operators", std::string(q->pause() ? "pause" : "resume") + " cloud pools"));
    return;
  }
  std::string reason = str(q->reason());
  if (reason.empty() && q->pause()) reason = who.empty() ? "paused by an operator" : "paused by " + who;
  auto s = core_.pause(str(q->pool()), q->pause(), reason, fx);
  if (!s) {
    r.error(s);
    return;
  }
  spdlog::info("cloud: {} {}{}", q->pool() && q->pool()->size() ? "pool " + q->pool()->str() : std::string("every pool"),
               q->pause() ? "paused" : "resumed", reason.empty() ? "" : ": " + reason);
  r.audit(std::string(q->pause() ? "pause " : "resume ") +
          (q->pool() && q->pool()->size() ? "pool " + q->pool()->str() : std::string("every pool")));
  apply(fx, runtime_->batch());
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void CloudShell::snapshot(flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) const {
  for (auto& [id, l] : core_.leases()) {
    if (l.ended()) continue;
    emit(cloud_topic(l), fb::Payload::CloudLease, build_cloud_lease(b, l).Union());
  }
  if (published_refused_ && !published_refused_->empty()) {
    emit(kRefusedTopic, fb::Payload::CloudRefusals, build_refusals(b, *published_refused_).Union());
  }
}

std::vector<std::pair<std::string, double>> CloudShell::gauges() const {
  std::vector<std::pair<std::string, double>> g;
  for (auto& p : core_.pools()) {
    for (auto s : {CloudState::kRequested, CloudState::kProvisioning, CloudState::kRegistering, CloudState::kReady,
                   CloudState::kDraining, CloudState::kReleasing}) {
      g.emplace_back(fmt::format("cloud_nodes_{}_{}", to_string(s), p.name), static_cast<double>(core_.in_state(p.name, s)));
    }
    g.emplace_back(fmt::format("cloud_pool_paused_{}", p.name), core_.pool_state(p.name).paused ? 1.0 : 0.0);
  }
  g.emplace_back("cloud_paused", core_.paused() ? 1.0 : 0.0);
  g.emplace_back("cloud_launches", static_cast<double>(stats_.launches));
  g.emplace_back("cloud_launch_errors", static_cast<double>(stats_.launch_errors));
  g.emplace_back("cloud_orphans_terminated", static_cast<double>(stats_.orphans_terminated));
  g.emplace_back("cloud_driver_failures", static_cast<double>(stats_.driver_failures));
  g.emplace_back("cloud_jobs_remembered", static_cast<double>(core_.jobs_remembered()));
  return g;
}

}  // namespace trainyard::broker
