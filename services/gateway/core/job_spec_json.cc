#include "core/job_spec_json.h"

#include <limits>

namespace trainyard::gateway {

namespace {

using Json = nlohmann::json;

struct Reader {
  const Json& j;
  std::optional<ApiError> err;

  bool fail(const std::string& field, const std::string& what) {
    if (!err) err = bad_request(field, "field '" + field + "' " + what);
    return false;
  }
  const Json* get(const char* k) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void string(const char* k, std::string* out) {
    if (auto* v = get(k)) {
      if (!v->is_string()) {
        fail(k, "must be a string");
        return;
      }
      *out = v->get<std::string>();
    }
  }
  template <typename T>
  void integer(const char* k, T* out) {
    if (auto* v = get(k)) {
      if (!v->is_number_integer()) {
        fail(k, "must be an integer");
        return;
      }
      if constexpr (std::is_unsigned_v<T>) {
        if (!v->is_number_unsigned() && v->get<int64_t>() < 0) {
          fail(k, "must not be negative");
          return;
        }
        auto x = v->get<uint64_t>();
        if (x > std::numeric_limits<T>::max()) {
          fail(k, "is too large");
          return;
        }
        *out = static_cast<T>(x);
      } else {
        if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
          fail(k, "is out of range");
          return;
        }
        auto x = v->get<int64_t>();
        if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) {
          fail(k, "is out of range");
          return;
        }
        *out = static_cast<T>(x);
      }
    }
  }
  void number(const char* k, double* out) {
    if (auto* v = get(k)) {
      if (!v->is_number()) {
        fail(k, "must be a number");
        return;
      }
      *out = v->get<double>();
      if (*out < 0) fail(k, "must not be negative");
    }
  }
  void boolean(const char* k, bool* out) {
    if (auto* v = get(k)) {
      if (!v->is_boolean()) {
        fail(k, "must be true or false");
        return;
      }
      *out = v->get<bool>();
    }
  }
  void key_values(const char* k, std::vector<std::unique_ptr<fb::KeyValueT>>* out) {
    auto* v = get(k);
    if (!v) return;
    if (!v->is_object()) {
      fail(k, "must be an object of string values");
      return;
    }
    for (auto& [key, val] : v->items()) {
      auto kv = std::make_unique<fb::KeyValueT>();
      kv->key = key;
      if (val.is_string()) {
        kv->value = val.get<std::string>();
      } else if (val.is_number() || val.is_boolean()) {
        kv->value = val.dump();  // {"lr": 0.1} is meant as "0.1"
      } else {
        fail(std::string(k) + "." + key, "must be a string or a number");
        return;
      }
      out->push_back(std::move(kv));
    }
  }
};

const char* const kFields[] = {"name",        "user",          "account",     "partition",      "command",
                               "workdir",     "env",           "gpus_per_node", "gpus",         "gpu_type",
                               "cpus",        "memory_mb",     "nodes",       "time_limit_s",   "priority",
                               "max_retries", "experiment",    "labels",      "array",          "dependencies",
                               "stdout_path", "stderr_path",   "preemptible", "grace_s",        "sim_duration_s",
                               "client_token"};

// "dependencies": [{"job_id": N, "kind": "afterok"}...]; the error names the
// field "dependencies" and, in its message, the entry ("dependencies[1].kind").
void dependencies(Reader& r, fb::JobSpecT* out) {
  auto* d = r.get("dependencies");
  if (!d) return;
  if (!d->is_array()) {
    r.fail("dependencies", "must be a list of {\"kind\": \"afterok\", \"job_id\": N}");
    return;
  }
  for (size_t i = 0; i < d->size(); ++i) {
    const Json& dep = (*d)[i];
    std::string at = "[" + std::to_string(i) + "]";
    auto fail = [&](const std::string& what) { r.fail("dependencies", "entry " + at + " " + what); };
    if (!dep.is_object()) {
      fail("must be an object {\"kind\": \"afterok\", \"job_id\": N}");
      return;
    }
    for (auto& [key, _] : dep.items()) {
      if (key != "job_id" && key != "kind") {
        fail("has an unknown field '" + key + "': use job_id and kind");
        return;
      }
    }
    auto it_id = dep.find("job_id");
    if (it_id == dep.end() || !it_id->is_number_unsigned()) {
      fail("needs job_id, a positive integer job id");
      return;
    }
    auto it_kind = dep.find("kind");
    if (it_kind != dep.end() && !it_kind->is_null() && !it_kind->is_string()) {
      fail("has a kind that is not a string: use afterok, afterany or afternotok");
      return;
    }
    std::string kind = it_kind == dep.end() || it_kind->is_null() ? "afterok" : it_kind->get<std::string>();
    for (auto& ch : kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto x = std::make_unique<fb::DependencyT>();
    x->job_id = it_id->get<uint64_t>();
    if (kind == "afterok") {
      x->kind = fb::DependencyKind::AfterOk;
    } else if (kind == "afterany") {
      x->kind = fb::DependencyKind::AfterAny;
    } else if (kind == "afternotok") {
      x->kind = fb::DependencyKind::AfterNotOk;
    } else {
      fail("has kind '" + kind + "': use afterok, afterany or afternotok");
      return;
    }
    out->dependencies.push_back(std::move(x));
  }
}

}  // namespace

std::optional<ApiError> parse_job_spec(const Json& j, const std::string& principal, bool may_act_for_others,
                                       fb::JobSpecT* out) {
  if (!j.is_object()) return bad_request("", "the request body must be a JSON object (a job spec)");
  for (auto& [key, _] : j.items()) {
    bool known = false;
    for (const char* f : kFields) known = known || key == f;
    if (!known) return bad_request(key, "unknown field '" + key + "' in the job spec (see docs/api/openapi.yaml)");
  }
  Reader r{j, std::nullopt};
  r.string("name", &out->name);
  r.string("user", &out->user);
  r.string("account", &out->account);
  r.string("partition", &out->partition);
  r.string("workdir", &out->workdir);
  r.string("gpu_type", &out->gpu_type);
  r.string("experiment", &out->experiment);
  r.string("array", &out->array);
  r.string("stdout_path", &out->stdout_path);
  r.string("stderr_path", &out->stderr_path);
  r.string("client_token", &out->client_token);
  r.integer("gpus_per_node", &out->gpus_per_node);
  if (j.contains("gpus") && j.contains("gpus_per_node")) r.fail("gpus", "and 'gpus_per_node' are the same: give one");
  r.integer("gpus", &out->gpus_per_node);
  r.integer("cpus", &out->cpus);
  r.integer("memory_mb", &out->memory_mb);
  r.integer("nodes", &out->nodes);
  r.integer("time_limit_s", &out->time_limit_s);
  r.integer("priority", &out->priority);
  r.integer("max_retries", &out->max_retries);
  r.integer("grace_s", &out->grace_s);
  r.number("sim_duration_s", &out->sim_duration_s);
  r.boolean("preemptible", &out->preemptible);
  r.key_values("env", &out->env);
  r.key_values("labels", &out->labels);
  if (auto* c = r.get("command")) {
    if (!c->is_array() || c->empty()) {
      r.fail("command", "must be a non-empty list of strings (argv), e.g. [\"python3\", \"train.py\"]");
    } else {
      for (auto& a : *c) {
        if (!a.is_string()) {
          r.fail("command", "must be a list of strings");
          break;
        }
        out->command.push_back(a.get<std::string>());
      }
    }
  }
  dependencies(r, out);
  if (r.err) return r.err;
  if (out->command.empty()) return bad_request("command", "field 'command' is required: the argv to run");
  if (out->user.empty()) {
    out->user = principal;
  } else if (out->user != principal && !may_act_for_others) {
    return ApiError{403, "user '" + principal + "' may not submit jobs as '" + out->user + "'", "user", "",
                    "PermissionDenied"};
  }
  return std::nullopt;
}

}  // namespace trainyard::gateway
