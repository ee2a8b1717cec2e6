#include "core/spec_limits.h"

#include <string>

#include "text/utf8.h"

namespace trainyard::scheduler {
namespace {

constexpr uint64_t kPerString = 12;  // offset, length prefix, NUL, padding
constexpr uint64_t kFixed = 256;    // the table's scalars and vtable

std::string n(uint64_t v) { return std::to_string(v); }

Status over(const std::string& field, uint64_t has, uint64_t limit, const char* unit, const char* key) {
  return Status::invalid(field + ": " + n(has) + " " + unit + " is over the limit of " + n(limit) + " (scheduler." +
                         key + ")");
}

Status check_text(const std::string& field, std::string_view s) {
  if (s.find('\0') != std::string_view::npos) return Status::invalid(field + ": must not contain a NUL byte");
  if (!text::valid_utf8(s)) return Status::invalid(field + ": is not valid UTF-8; write it in UTF-8");
  return Status::success();
}

uint64_t kv_bytes(const std::vector<std::unique_ptr<fb::KeyValueT>>& kvs) {
  uint64_t total = 0;
  for (auto& kv : kvs) {
    if (kv) total += kv->key.size() + kv->value.size();
  }
  return total;
}

Status check_strings(const fb::JobSpecT& s, const SpecLimits& l) {
  const std::pair<const char*, const std::string*> names[] = {
      {"name", &s.name},         {"user", &s.user},         {"account", &s.account},
      {"partition", &s.partition}, {"experiment", &s.experiment}, {"gpu_type", &s.gpu_type},
      {"array", &s.array},       {"client_token", &s.client_token}, {"submit_host", &s.submit_host},
      {"constraint", &s.constraint}, {"qos", &s.qos}};
  for (auto& [field, v] : names) {
    if (v->size() > l.max_string_bytes) return over(field, v->size(), l.max_string_bytes, "bytes", "max_string_bytes");
    if (auto st = check_text(field, *v); !st) return st;
  }
  const std::pair<const char*, const std::string*> paths[] = {
      {"workdir", &s.workdir}, {"stdout_path", &s.stdout_path}, {"stderr_path", &s.stderr_path},
      {"submit_dir", &s.submit_dir}};
  for (auto& [field, v] : paths) {
    if (v->size() > l.max_path_bytes) return over(field, v->size(), l.max_path_bytes, "bytes", "max_path_bytes");
  }
  return Status::success();
}

Status check_lists(const fb::JobSpecT& s, const SpecLimits& l) {
  if (s.command.size() > l.max_argv) return over("command", s.command.size(), l.max_argv, "arguments", "max_argv");
  // A batch script counts with the arguments it is run with.
  uint64_t argv = s.script.size();
  for (auto& a : s.command) argv += a.size();
  if (argv > l.max_argv_bytes) {
    return over(s.script.empty() ? "command" : "script and its command", argv, l.max_argv_bytes, "bytes",
                "max_argv_bytes");
  }
  // Node names (--nodelist, --exclude) and notification targets.
  const std::pair<const char*, const std::vector<std::string>*> lists[] = {
      {"nodelist", &s.nodelist}, {"exclude", &s.exclude}, {"notify", &s.notify}};
  for (auto& [field, v] : lists) {
    if (v->size() > l.max_labels) return over(field, v->size(), l.max_labels, "entries", "max_labels");
    for (size_t i = 0; i < v->size(); ++i) {
      auto name = std::string(field) + "[" + n(i) + "]";
      if ((*v)[i].size() > l.max_string_bytes) {
        return over(name, (*v)[i].size(), l.max_string_bytes, "bytes", "max_string_bytes");
      }
      if (auto st = check_text(name, (*v)[i]); !st) return st;
    }
  }
  if (s.signal < 0 || s.signal > 64) {
    return Status::invalid("signal: " + std::to_string(s.signal) + " is not a signal number (1 to 64; 0: none)");
  }
  if (s.signal_before_s > 65535) {
    return Status::invalid("signal_before_s: " + n(s.signal_before_s) + " s is over 65535 s, the most --signal allows");
  }
  if (!s.script.empty() && s.script_arg >= s.command.size()) {
    return Status::invalid("script_arg: " + n(s.script_arg) + " names no argument of the command (it has " +
                           n(s.command.size()) + "); it is the argument the batch script's copy replaces");
  }
  if (s.env.size() > l.max_env) return over("env", s.env.size(), l.max_env, "variables", "max_env");
  if (auto b = kv_bytes(s.env); b > l.max_env_bytes) return over("env", b, l.max_env_bytes, "bytes", "max_env_bytes");
  if (s.labels.size() > l.max_labels) return over("labels", s.labels.size(), l.max_labels, "labels", "max_labels");
  if (auto b = kv_bytes(s.labels); b > l.max_label_bytes) {
    return over("labels", b, l.max_label_bytes, "bytes", "max_label_bytes");
  }
  if (s.dependencies.size() > l.max_dependencies) {
    return over("dependencies", s.dependencies.size(), l.max_dependencies, "dependencies", "max_dependencies");
  }
  for (size_t i = 0; i < s.env.size(); ++i) {
    if (!s.env[i]) continue;
    if (auto st = check_text("env[" + n(i) + "] name", s.env[i]->key); !st) return st;
  }
  for (size_t i = 0; i < s.labels.size(); ++i) {
    if (!s.labels[i]) continue;
    if (auto st = check_text("labels[" + n(i) + "] key", s.labels[i]->key); !st) return st;
    if (auto st = check_text("labels[" + n(i) + "] value", s.labels[i]->value); !st) return st;
  }
  return Status::success();
}

}  // namespace

uint64_t spec_bytes(const fb::JobSpecT& s) {
  uint64_t total = kFixed;
  for (const std::string* v : {&s.name, &s.user, &s.account, &s.partition, &s.workdir, &s.gpu_type, &s.experiment,
                               &s.array, &s.stdout_path, &s.stderr_path, &s.client_token, &s.submit_dir,
                               &s.submit_host}) {
    total += v->size() + kPerString;
  }
  for (auto& a : s.command) total += a.size() + kPerString;
  total += s.script.size() + kPerString;
  for (auto* list : {&s.nodelist, &s.exclude, &s.notify}) {
    for (auto& v : *list) total += v.size() + kPerString;
  }
  total += s.constraint.size() + s.qos.size() + 2 * kPerString;
  for (auto* kvs : {&s.env, &s.labels}) total += kv_bytes(*kvs) + kvs->size() * (2 * kPerString + 24);
  total += s.dependencies.size() * 32;
  return total;
}

Status check_spec_limits(const fb::JobSpecT& spec, const SpecLimits& limits) {
  if (auto b = spec_bytes(spec); b > limits.max_spec_bytes) {
    return Status::invalid("spec: " + n(b) + " bytes is over the limit of " + n(limits.max_spec_bytes) +
                           " (scheduler.max_spec_bytes); ship large inputs as files, not in the command or env");
  }
  if (auto s = check_strings(spec, limits); !s) return s;
  return check_lists(spec, limits);
}

}  // namespace trainyard::scheduler
