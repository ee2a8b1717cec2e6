#include "core/codec.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace trainyard::gateway {

namespace {

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

Json key_values(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* kvs) {
  Json j = Json::object();
  if (!kvs) return j;
  for (const auto* kv : *kvs) {
    if (kv) j[str(kv->key())] = str(kv->value());
  }
  return j;
}

template <typename T>
Json numbers(const flatbuffers::Vector<T>* v) {
  Json j = Json::array();
  if (!v) return j;
  for (auto x : *v) j.push_back(x);
  return j;
}

Json strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  Json j = Json::array();
  if (!v) return j;
  for (const auto* s : *v) j.push_back(str(s));
  return j;
}

// Env values whose name says they are secret (API tokens, cloud keys) are
// never shown: job pages and comparisons are readable by anyone who can
// reach the gateway.
Json redacted_env(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* kvs) {
  Json j = key_values(kvs);
  for (auto& [k, v] : j.items()) {
    if (secret_env_name(k)) v = "<redacted>";
  }
  return j;
}

// JSON has no NaN/Inf: a metric that never had a finite value is null.
Json number_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

}  // namespace

std::string state_name(fb::JobState s) { return fb::EnumNameJobState(s); }

std::optional<fb::JobState> parse_state(std::string_view name) {
  for (auto s : fb::EnumValuesJobState()) {
    std::string_view n = fb::EnumNameJobState(s);
    if (n.size() == name.size() &&
        std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return s;
    }
  }
  return std::nullopt;
}

bool is_terminal(fb::JobState s) {
  switch (s) {
    case fb::JobState::Succeeded:
    case fb::JobState::Failed:
    case fb::JobState::Cancelled:
    case fb::JobState::TimedOut:
    case fb::JobState::NodeFailure: return true;
    default: return false;
  }
}

int64_t ns_to_ms(int64_t ns) { return ns / 1'000'000; }

bool secret_env_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const char* k : {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "SESSION",
                        "COOKIE", "DSN"}) {
    if (n.find(k) != std::string::npos) return true;
  }
  return false;
}

double micros_to_amount(int64_t micros) { return static_cast<double>(micros) / 1e6; }

Json to_json(const fb::JobSpec* s) {
  if (!s) return Json::object();
  Json deps = Json::array();
  if (s->dependencies()) {
    for (const auto* d : *s->dependencies()) {
      deps.push_back({{"kind", fb::EnumNameDependencyKind(d->kind())}, {"job_id", d->job_id()}});
    }
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
              {"preemptible", s->preemptible()},
              {"grace_s", s->grace_s()}};
}

Json to_json(const fb::JobRecord& j, bool with_history) {
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
           {"priority_score", number_or_null(j.priority_score())}};
  if (with_history) {
    out["spec"] = to_json(spec);
    out["lease_ids"] = numbers(j.lease_ids());
    Json h = Json::array();
    if (j.history()) {
      for (const auto* t : *j.history()) {
        h.push_back({{"state", state_name(t->to())}, {"time_ms", ns_to_ms(t->time_ns())}, {"reason", str(t->reason())}});
      }
    }
    out["history"] = h;
  }
  return out;
}

Json to_json(const fb::NodeStatus& n) {
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
              {"gpus", gpus},
              {"allocated_gpus", numbers(n.allocated_gpus())},
              {"leases", numbers(n.leases())},
              {"last_heartbeat_ms", ns_to_ms(n.last_heartbeat_ns())}};
}

Json to_json(const fb::MetricSummaries& m) {
  Json list = Json::array();
  if (m.metrics()) {
    for (const auto* s : *m.metrics()) {
      list.push_back({{"name", str(s->name())},
                      {"count", s->count()},
                      {"last", number_or_null(s->last())},
                      {"last_step", s->last_step()},
                      {"min", number_or_null(s->min())},
                      {"min_step", s->min_step()},
                      {"max", number_or_null(s->max())},
                      {"max_step", s->max_step()}});
    }
  }
  return Json{{"job_id", m.job_id()}, {"metrics", list}};
}

Json to_json(const fb::Series& s) {
  Json values = Json::array();
  if (s.values()) {
    for (double v : *s.values()) values.push_back(number_or_null(v));
  }
  return Json{{"job_id", s.job_id()},
              {"name", str(s.name())},
              {"steps", numbers(s.steps())},
              {"values", values},
              {"total_points", s.total_points()}};
}

Json to_json(const fb::UsageReport& u) {
  Json rows = Json::array();
  int64_t total = 0;
  if (u.rows()) {
    for (const auto* r : *u.rows()) {
      total += r->cost_micros();
      rows.push_back({{"key", str(r->key())},
                      {"gpu_ms", r->gpu_ms()},
                      {"cpu_ms", r->cpu_ms()},
                      {"memory_mb_ms", r->memory_mb_ms()},
                      {"gpu_hours", static_cast<double>(r->gpu_ms()) / 3.6e6},
                      {"cost_micros", r->cost_micros()},
                      {"cost", micros_to_amount(r->cost_micros())}});
    }
  }
  return Json{{"currency", str(u.currency())},
              {"rows", rows},
              {"total_micros", total},
              {"total", micros_to_amount(total)}};
}

Json to_json(const fb::Invoice& inv) {
  Json lines = Json::array();
  if (inv.lines()) {
    for (const auto* l : *inv.lines()) {
      lines.push_back({{"user", str(l->user())},
                       {"resource", str(l->resource())},
                       {"gpu_type", str(l->gpu_type())},
                       {"quantity_ms", l->quantity_ms()},
                       {"hours", static_cast<double>(l->quantity_ms()) / 3.6e6},
                       {"cost_micros", l->cost_micros()},
                       {"cost", micros_to_amount(l->cost_micros())}});
    }
  }
  return Json{{"account", str(inv.account())},
              {"month", str(inv.month())},
              {"currency", str(inv.currency())},
              {"lines", lines},
              {"total_micros", inv.total_micros()},
              {"total", micros_to_amount(inv.total_micros())}};
}

Json to_json(const fb::Comparison& c, bool maximize) {
  struct Row {
    Json j;
    double best;
    bool has;
  };
  std::vector<Row> rows;
  if (c.rows()) {
    for (const auto* r : *c.rows()) {
      bool has = std::isfinite(r->best_value());
      rows.push_back({Json{{"job_id", r->job_id()},
                           {"name", str(r->name())},
                           {"final_value", number_or_null(r->final_value())},
                           {"final_step", r->final_step()},
                           {"best_value", number_or_null(r->best_value())},
                           {"best_step", r->best_step()},
                           {"labels", key_values(r->labels())}},
                      r->best_value(), has});
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (a.has != b.has) return a.has;
    if (!a.has) return false;
    return maximize ? a.best > b.best : a.best < b.best;
  });
  Json best = rows.empty() || !rows.front().has ? Json(nullptr) : rows.front().j["job_id"];
  Json out = Json::array();
  int rank = 0;
  for (auto& r : rows) {
    r.j["rank"] = ++rank;
    out.push_back(std::move(r.j));
  }
  return Json{{"metric", str(c.metric())}, {"maximize", maximize}, {"rows", out}, {"best_job_id", best}};
}

}  // namespace trainyard::gateway
