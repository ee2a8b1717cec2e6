#include "records/record_json.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "job/job_state.h"
#include "records/fb_json.h"

namespace trainyard::records {

using Json = nlohmann::json;

namespace {

// Job pages and comparisons are readable by anyone who can reach the
// gateway, and ty prints what the gateway would: secrets never show.
Json redacted_env(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* kvs) {
  Json j = key_values(kvs);
  for (auto& [k, v] : j.items()) {
    if (secret_env_name(k)) v = "<redacted>";
  }
  return j;
}

std::string dependency_kind(fb::DependencyKind k) {
  std::string s = fb::EnumNameDependencyKind(k);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s.empty() ? "unknown" : s;
}

Json history_json(const fb::JobRecord& j) {
  Json h = Json::array();
  if (!j.history()) return h;
  for (const auto* t : *j.history()) {
    h.push_back({{"state", state_name(t->to())}, {"time_ms", ns_to_ms(t->time_ns())}, {"reason", str(t->reason())}});
  }
  return h;
}

// Packs an object-API value and returns the JSON of its table.
template <typename T, typename F>
Json packed(const T& value, F&& view) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(T::TableType::Pack(b, &value));
  return view(*flatbuffers::GetRoot<typename T::TableType>(b.GetBufferPointer()));
}

}  // namespace

bool secret_env_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const char* k : {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "SESSION",
                        "COOKIE", "DSN"}) {
    if (n.find(k) != std::string::npos) return true;
  }
  return false;
}

Json spec_json(const fb::JobSpec* s) {
  if (!s) return Json::object();
  Json deps = Json::array();
  if (s->dependencies()) {
    for (const auto* d : *s->dependencies()) deps.push_back({{"kind", dependency_kind(d->kind())}, {"job_id", d->job_id()}});
  }
  return Json{{"name", str(s->name())},
              {"user", str(s->user())},
              {"account", str(s->account())},
              {"partition", str(s->partition())},
              {"command", strings(s->command())},
              {"workdir", str(s->workdir())},
              {"env", redacted_env(s->env())},
              {"gpus_per_node", s->gpus_per_node()},
              {"gpu_type", str(s->gpu_type())},
              {"cpus", s->cpus()},
              {"memory_mb", s->memory_mb()},
              {"nodes", s->nodes()},
              {"time_limit_s", s->time_limit_s()},
              {"priority", s->priority()},
              {"max_retries", s->max_retries()},
              {"experiment", str(s->experiment())},
              {"labels", key_values(s->labels())},
              {"array", str(s->array())},
              {"dependencies", deps},
              {"stdout_path", str(s->stdout_path())},
              {"stderr_path", str(s->stderr_path())},
              {"preemptible", s->preemptible()},
              {"resumable", s->resumable()},
              {"grace_s", s->grace_s()}};
}

Json job_json(const fb::JobRecord& j, JobView view) {
  const auto* spec = j.spec();
  Json out{{"job_id", j.job_id()},
           {"name", spec ? str(spec->name()) : ""},
           {"user", spec ? str(spec->user()) : ""},
           {"account", spec ? str(spec->account()) : ""},
           {"partition", spec ? str(spec->partition()) : ""},
           {"experiment", spec ? str(spec->experiment()) : ""},
           {"gpus", spec ? spec->gpus_per_node() * std::max(1u, spec->nodes()) : 0},
           {"gpu_type", spec ? str(spec->gpu_type()) : ""},
           {"state", state_name(j.state())},
           {"terminal", is_terminal(j.state())},
           {"reason", str(j.reason())},
           {"nodes", strings(j.nodes())},
           {"gpu_indices", numbers(j.gpu_indices())},
           {"exit_code", j.exit_code()},
           {"attempt", j.attempt()},
           {"array_job_id", j.array_job_id()},
           {"array_index", j.array_index()},
           {"submit_time_ms", ns_to_ms(j.submit_time_ns())},
           {"start_time_ms", ns_to_ms(j.start_time_ns())},
           {"end_time_ms", ns_to_ms(j.end_time_ns())},
           {"priority",
            {{"score", number_or_null(j.priority_score())},
             {"tier", j.priority_tier()},
             {"fairshare", number_or_null(j.fairshare_factor())},
             {"age", number_or_null(j.age_factor())},
             {"expected_start_ms", ns_to_ms(j.expected_start_ns())}}},
           {"preemptions", j.preemptions()}};
  if (view == JobView::kFull) {
    out["spec"] = spec_json(spec);
    out["lease_ids"] = numbers(j.lease_ids());
    out["history"] = history_json(j);
  }
  return out;
}

Json node_json(const fb::NodeStatus& n) {
  const auto* info = n.node();
  Json gpus = Json::array();
  std::vector<uint32_t> allocated;
  if (n.allocated_gpus()) allocated.assign(n.allocated_gpus()->begin(), n.allocated_gpus()->end());
  if (info && info->gpus()) {
    for (const auto* g : *info->gpus()) {
      bool busy = std::find(allocated.begin(), allocated.end(), g->index()) != allocated.end();
      gpus.push_back({{"index", g->index()},
                      {"type", str(g->type())},
                      {"memory_mb", g->memory_mb()},
                      {"uuid", str(g->uuid())},
                      {"allocated", busy}});
    }
  }
  return Json{{"name", info ? str(info->name()) : ""},
              {"up", n.up()},
              {"drained", n.drained()},
              {"reason", str(n.reason())},
              {"partition", info ? str(info->partition()) : ""},
              {"cpus", info ? info->cpus() : 0},
              {"memory_mb", info ? info->memory_mb() : 0},
              {"simulated", info ? info->simulated() : false},
              {"labels", info ? key_values(info->labels()) : Json::object()},
              {"agent_endpoint", info ? str(info->agent_endpoint()) : ""},
              {"gpus", gpus},
              {"allocated_gpus", numbers(n.allocated_gpus())},
              {"leases", numbers(n.leases())},
              {"last_heartbeat_ms", ns_to_ms(n.last_heartbeat_ns())}};
}

Json job_json(const fb::JobRecordT& j, JobView view) {
  return packed(j, [view](const fb::JobRecord& r) { return job_json(r, view); });
}

Json spec_json(const fb::JobSpecT& s) {
  return packed(s, [](const fb::JobSpec& r) { return spec_json(&r); });
}

Json node_json(const fb::NodeStatusT& n) {
  return packed(n, [](const fb::NodeStatus& r) { return node_json(r); });
}

nlohmann::json cloud_lease_json(const fb::CloudLease& l) {
  return {{"lease_id", l.lease_id()},
          {"pool", str(l.pool())},
          {"state", fb::EnumNameCloudLeaseState(l.state())},
          {"node", str(l.node())},
          {"instance_id", str(l.instance_id())},
          {"reason", str(l.reason())},
          {"failure", str(l.failure())},
          {"gpu_type", str(l.gpu_type())},
          {"gpus", l.gpus()},
          {"spot", l.spot()},
          {"price_micros_per_hour", l.price_micros_per_hour()},
          {"for_job", l.for_job()},
          {"account", str(l.account())},
          {"requested_ns", l.requested_ns()},
          {"ready_ns", l.ready_ns()},
          {"expected_ready_ns", l.expected_ready_ns()},
          {"state_ns", l.state_ns()},
          {"ended_ns", l.ended_ns()},
          {"interrupt_at_ns", l.interrupt_at_ns()}};
}

nlohmann::json cloud_pool_json(const fb::CloudPoolStatus& p) {
  return {{"name", str(p.name())},
          {"driver", str(p.driver())},
          {"gpu_type", str(p.gpu_type())},
          {"gpus_per_node", p.gpus_per_node()},
          {"partition", str(p.partition())},
          {"min_nodes", p.min_nodes()},
          {"max_nodes", p.max_nodes()},
          {"price_micros_per_hour", p.price_micros_per_hour()},
          {"spot_price_micros_per_hour", p.spot_price_micros_per_hour()},
          {"paused", p.paused()},
          {"pause_reason", str(p.pause_reason())},
          {"backoff_until_ns", p.backoff_until_ns()},
          {"backoff_reason", str(p.backoff_reason())},
          {"live_nodes", p.live_nodes()},
          {"ready_nodes", p.ready_nodes()},
          {"max_wait_before_burst_s", p.max_wait_before_burst_s()}};
}

nlohmann::json cloud_report_json(const fb::CloudReport* report) {
  nlohmann::json out = {{"paused", report && report->paused()},
                        {"pause_reason", report ? str(report->pause_reason()) : std::string()},
                        {"pools", nlohmann::json::array()},
                        {"leases", nlohmann::json::array()},
                        {"refused", nlohmann::json::array()},
                        {"jobs_remembered", report ? report->jobs_remembered() : 0u}};
  if (report && report->refused()) {
    for (const auto* r : *report->refused()) out["refused"].push_back({{"job_id", r->job_id()}, {"reason", str(r->reason())}});
  }
  if (report && report->pools()) {
    for (const auto* p : *report->pools()) out["pools"].push_back(cloud_pool_json(*p));
  }
  if (report && report->leases()) {
    for (const auto* l : *report->leases()) out["leases"].push_back(cloud_lease_json(*l));
  }
  return out;
}

}  // namespace trainyard::records
