// Job spec files in TOML or JSON. Both are read into one JSON tree plus a
// way to find a key's line, so one set of field rules serves both formats
// and every error names the file, the line and the field.
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "trainyard/job_spec.h"
#include "trainyard/job_spec_json.h"

namespace trainyard::client {
namespace {

using nlohmann::json;

struct Document {
  json root;
  std::string path;
  // Line of a top-level key (or of `key` nested under `parent`); 0: unknown.
  std::function<int(const std::string& parent, const std::string& key)> line_of;
};

int line_at(std::string_view text, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
  }
  return line;
}

// JSON keeps no positions: find `"key"` followed by ':' (after the parent's
// key when nested). Good enough for naming a line in a small spec file.
size_t find_json_key(std::string_view text, const std::string& key, size_t from) {
  std::string quoted = "\"" + key + "\"";
  for (auto at = text.find(quoted, from); at != std::string_view::npos; at = text.find(quoted, at + 1)) {
    auto after = text.find_first_not_of(" \t\r\n", at + quoted.size());
    if (after != std::string_view::npos && text[after] == ':') return at;
  }
  return std::string_view::npos;
}

json toml_to_json(const toml::node& n, const std::string& prefix, std::map<std::string, int>& lines) {
  if (auto* t = n.as_table()) {
    json out = json::object();
    for (auto& [k, v] : *t) {
      std::string key(k.str());
      lines[prefix + key] = static_cast<int>(v.source().begin.line);
      out[key] = toml_to_json(v, prefix + key + ".", lines);
    }
    return out;
  }
  if (auto* a = n.as_array()) {
    json out = json::array();
    for (auto& v : *a) out.push_back(toml_to_json(v, prefix, lines));
    return out;
  }
  if (auto v = n.as_string()) return v->get();
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  std::ostringstream os;  // dates and times: as written
  n.visit([&os](auto&& x) { os << x; });
  return os.str();
}

Result<Document> parse_document(std::string_view text, const std::string& path) {
  Document doc;
  doc.path = path;
  auto ends_with = [&path](std::string_view ext) {
    return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  };
  bool is_json = ends_with(".json");
  if (!is_json && !ends_with(".toml")) {  // no telling extension: a JSON object starts with '{'
    auto first = text.find_first_not_of(" \t\r\n");
    is_json = first != std::string_view::npos && text[first] == '{';
  }
  if (is_json) {
    try {
      doc.root = json::parse(text);
    } catch (const json::parse_error& e) {
      return Status::invalid(path + " line " + std::to_string(line_at(text, e.byte == 0 ? 0 : e.byte - 1)) +
                             ": not valid JSON: " + e.what());
    } catch (const json::exception& e) {
      // The parser's other refusals, such as a number too large for any
      // integer or double ("number overflow parsing ..."; fuzz_spec_file).
      return Status::invalid(path + ": not valid JSON: " + e.what());
    }
    if (!doc.root.is_object()) return Status::invalid(path + " line 1: a job spec must be a JSON object");
    std::string copy(text);
    doc.line_of = [copy](const std::string& parent, const std::string& key) {
      size_t from = 0;
      if (!parent.empty()) {
        from = find_json_key(copy, parent, 0);
        if (from == std::string::npos) return 0;
      }
      auto at = find_json_key(copy, key, from);
      return at == std::string::npos ? 0 : line_at(copy, at);
    };
    return doc;
  }
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Status::invalid(path + " line " + std::to_string(e.source().begin.line) + ": not valid TOML: " +
                           std::string(e.description()));
  }
  auto lines = std::make_shared<std::map<std::string, int>>();
  doc.root = toml_to_json(table, "", *lines);
  doc.line_of = [lines](const std::string& parent, const std::string& key) {
    auto it = lines->find(parent.empty() ? key : parent + "." + key);
    return it == lines->end() ? 0 : it->second;
  };
  return doc;
}

// Reads one field; errors name file, line and field.
class FieldReader {
 public:
  // `bad_field`, when given, receives the name of the field an error is about.
  FieldReader(const Document& doc, std::string* bad_field) : doc_(doc), bad_field_(bad_field) {}

  Status error(const std::string& field, const std::string& what, const std::string& parent = "") const {
    int line = doc_.line_of ? doc_.line_of(parent, field) : 0;
    std::string where = doc_.path + (line > 0 ? " line " + std::to_string(line) : std::string());
    std::string name = parent.empty() ? field : parent + "." + field;
    if (bad_field_) *bad_field_ = name;
    return Status::invalid((where.empty() ? "" : where + ": ") + "field '" + name + "' " + what);
  }

  Result<std::string> string(const std::string& field, const json& v) const {
    if (!v.is_string()) return error(field, "must be a string");
    return v.get<std::string>();
  }
  Result<uint64_t> unsigned_int(const std::string& field, const json& v, uint64_t max) const {
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)) {
      return error(field, "must be a whole number, 0 or more");
    }
    auto n = v.get<uint64_t>();
    if (n > max) return error(field, "is too large (at most " + std::to_string(max) + ")");
    return n;
  }
  Result<std::string> scalar_as_string(const std::string& field, const json& v, const std::string& parent) const {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number() || v.is_boolean()) return v.dump();
    return error(field, "must be a string, number or boolean", parent);
  }
  Result<std::vector<std::unique_ptr<fb::KeyValueT>>> key_values(const std::string& field, const json& v) const {
    if (!v.is_object()) return error(field, "must be a table of KEY = VALUE");
    std::vector<std::unique_ptr<fb::KeyValueT>> out;
    for (auto& [k, val] : v.items()) {
      auto s = scalar_as_string(k, val, field);
      if (!s) return s.status();
      auto kv = std::make_unique<fb::KeyValueT>();
      kv->key = k;
      kv->value = *s;
      out.push_back(std::move(kv));
    }
    return out;
  }

 private:
  const Document& doc_;
  std::string* bad_field_;
};

// One entry of "dependencies": "afterok:12", or {kind, job_id} where kind
// defaults to afterok. Empty: the entry is not one of those.
std::string dependency_text(const json& item) {
  if (item.is_string()) return item.get<std::string>();
  if (!item.is_object()) return "";
  for (auto& [key, _] : item.items()) {
    if (key != "kind" && key != "job_id") return "";
  }
  auto id = item.find("job_id");
  auto kind = item.find("kind");
  // TOML integers are signed; JSON's non-negative ones unsigned.
  if (id == item.end() || !id->is_number_integer()) return "";
  if (!id->is_number_unsigned() && id->get<int64_t>() <= 0) return "";
  if (id->get<uint64_t>() == 0) return "";
  if (kind != item.end() && !kind->is_null() && !kind->is_string()) return "";
  std::string k = kind == item.end() || kind->is_null() ? "afterok" : kind->get<std::string>();
  return k + ":" + std::to_string(id->get<uint64_t>());
}

// "command": an argv list, or one shell command string (run by bash -c).
Status set_command(const FieldReader& r, const std::string& f, const json& v, fb::JobSpecT& spec) {
  spec.command.clear();
  if (v.is_string()) {
    if (v.get<std::string>().empty()) return r.error(f, "is an empty shell command: give the command to run");
    spec.command = {"bash", "-c", v.get<std::string>()};
    return Status::success();
  }
  if (!v.is_array() || v.empty()) return r.error(f, "must be a list of strings (argv) or a shell command string");
  for (auto& a : v) {
    if (!a.is_string()) return r.error(f, "must be a list of strings (argv) or a shell command string");
    spec.command.push_back(a.get<std::string>());
  }
  return Status::success();
}

// "memory": a size as sbatch takes it ("16G"), or a number of megabytes.
Status set_memory(const FieldReader& r, const std::string& f, const json& v, fb::JobSpecT& spec) {
  std::string text;
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) {
    text = v.dump();
  } else if (v.is_string()) {
    text = v.get<std::string>();
  } else {
    return r.error(f, "must be a size such as \"16G\" (or use memory_mb)");
  }
  auto m = parse_memory_mb(text);
  if (!m) return r.error(f, "is not valid: " + m.status().message());
  spec.memory_mb = *m;
  return Status::success();
}

// "dependencies": "afterok:12,afterany:13", or a list of such strings or
// of {kind, job_id} tables.
Status set_dependencies(const FieldReader& r, const std::string& f, const json& v, fb::JobSpecT& spec) {
  spec.dependencies.clear();
  auto add = [&](const std::string& text, const std::string& entry) -> Status {
    auto d = parse_dependency(text);
    if (!d) return r.error(f, entry + "is not valid: " + d.status().message());
    for (auto& dep : *d) spec.dependencies.push_back(std::make_unique<fb::DependencyT>(dep));
    return Status::success();
  };
  if (v.is_string()) return add(v.get<std::string>(), "");
  if (!v.is_array()) return r.error(f, "must be a list such as [\"afterok:12\"] or [{kind = \"afterok\", job_id = 12}]");
  for (size_t i = 0; i < v.size(); ++i) {
    std::string entry = "entry [" + std::to_string(i) + "] ";
    std::string text = dependency_text(v[i]);
    if (text.empty()) {
      return r.error(f, entry + "must be \"afterok:12\" or {kind = \"afterok\", job_id = 12} (kind: afterok, "
                                "afterany or afternotok)");
    }
    if (auto s = add(text, entry); !s) return s;
  }
  return Status::success();
}

// "nodelist", "exclude": a Slurm host list ("gpu[01-04]") or a list of names;
// "notify": a list of destinations (or one).
Result<std::vector<std::string>> names_of(const FieldReader& r, const std::string& f, const json& v, bool hostlist) {
  std::vector<std::string> out;
  if (v.is_string()) {
    if (!hostlist) return std::vector<std::string>{v.get<std::string>()};
    auto names = expand_hostlist(v.get<std::string>());
    if (!names) return r.error(f, "is not valid: " + names.status().message());
    return *names;
  }
  if (!v.is_array()) return r.error(f, "must be a list of strings");
  for (auto& item : v) {
    if (!item.is_string()) return r.error(f, "must be a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

// What fill_spec does with each field: reads the value and sets the spec.
using FieldSetter = std::function<Status(const std::string&, const json&)>;
using FieldSetters = std::map<std::string, FieldSetter>;

// A field that is a string member of the spec, as it is.
FieldSetter string_field(const FieldReader& r, fb::JobSpecT& spec, std::string fb::JobSpecT::*member) {
  return [&spec, &r, member](const std::string& f, const json& v) -> Status {
    auto s = r.string(f, v);
    if (!s) return s.status();
    spec.*member = *s;
    return Status::success();
  };
}

// A field that is a whole-number member of the spec (up to its type's largest).
template <typename Number>
FieldSetter whole_number_field(const FieldReader& r, fb::JobSpecT& spec, Number fb::JobSpecT::*member) {
  return [&spec, &r, member](const std::string& f, const json& v) -> Status {
    auto n = r.unsigned_int(f, v, std::numeric_limits<Number>::max());
    if (!n) return n.status();
    spec.*member = static_cast<Number>(*n);
    return Status::success();
  };
}

// A field that is a table of KEY = VALUE ("env", "labels").
FieldSetter key_values_field(const FieldReader& r, fb::JobSpecT& spec,
                             std::vector<std::unique_ptr<fb::KeyValueT>> fb::JobSpecT::*member) {
  return [&spec, &r, member](const std::string& f, const json& v) -> Status {
    auto kv = r.key_values(f, v);
    if (!kv) return kv.status();
    spec.*member = std::move(*kv);
    return Status::success();
  };
}

// The fields that are the spec's own members, taken as they are: strings,
// whole numbers, the command and the tables of KEY = VALUE.
void add_plain_fields(const FieldReader& r, fb::JobSpecT& spec, FieldSetters& fields) {
  auto str = [&](std::string fb::JobSpecT::*member) { return string_field(r, spec, member); };
  auto num = [&](auto fb::JobSpecT::*member) { return whole_number_field(r, spec, member); };
  fields.insert({
      {"name", str(&fb::JobSpecT::name)},
      {"user", str(&fb::JobSpecT::user)},
      {"account", str(&fb::JobSpecT::account)},
      {"partition", str(&fb::JobSpecT::partition)},
      {"workdir", str(&fb::JobSpecT::workdir)},
      {"gpu_type", str(&fb::JobSpecT::gpu_type)},
      {"experiment", str(&fb::JobSpecT::experiment)},
      {"stdout_path", str(&fb::JobSpecT::stdout_path)},
      {"stderr_path", str(&fb::JobSpecT::stderr_path)},
      {"client_token", str(&fb::JobSpecT::client_token)},
      {"gpus_per_node", num(&fb::JobSpecT::gpus_per_node)},
      {"cpus", num(&fb::JobSpecT::cpus)},
      {"nodes", num(&fb::JobSpecT::nodes)},
      {"max_retries", num(&fb::JobSpecT::max_retries)},
      {"grace_s", num(&fb::JobSpecT::grace_s)},
      {"memory_mb", num(&fb::JobSpecT::memory_mb)},
      {"time_limit_s", num(&fb::JobSpecT::time_limit_s)},
      {"command", [&](const std::string& f, const json& v) { return set_command(r, f, v, spec); }},
      {"env", key_values_field(r, spec, &fb::JobSpecT::env)},
      {"labels", key_values_field(r, spec, &fb::JobSpecT::labels)},
  });
}

// The fields checked for a range or read through the spec's own parsers
// (the same as sbatch's options): "gpus", "priority", "preemptible", "resumable",
// "sim_duration_s", "array", "time_limit", "memory" and "dependencies".
void add_checked_fields(const FieldReader& r, const json& root, fb::JobSpecT& spec, FieldSetters& fields) {
  fields.insert({
      {"gpus",  // the same as gpus_per_node, as `ty submit --gpus-per-node` and REST bodies say it
       [&r, &root, &spec](const std::string& f, const json& v) -> Status {
         if (root.contains("gpus_per_node")) return r.error(f, "and 'gpus_per_node' are the same: give one");
         return whole_number_field(r, spec, &fb::JobSpecT::gpus_per_node)(f, v);
       }},
      {"priority",
       [&r, &spec](const std::string& f, const json& v) -> Status {
         if (!v.is_number_integer()) return r.error(f, "must be a whole number");
         bool huge = v.is_number_unsigned() && v.get<uint64_t>() > 1'000'000;
         auto n = v.get<int64_t>();
         if (huge || n < -1'000'000 || n > 1'000'000) return r.error(f, "must be between -1000000 and 1000000");
         spec.priority = static_cast<int32_t>(n);
         return Status::success();
       }},
      {"preemptible",
       [&r, &spec](const std::string& f, const json& v) -> Status {
         if (!v.is_boolean()) return r.error(f, "must be true or false");
         spec.preemptible = v.get<bool>();
         return Status::success();
       }},
      {"resumable",
       [&r, &spec](const std::string& f, const json& v) -> Status {
         if (!v.is_boolean()) return r.error(f, "must be true or false");
         spec.resumable = v.get<bool>();
         return Status::success();
       }},
      {"sim_duration_s",
       [&r, &spec](const std::string& f, const json& v) -> Status {
         if (!v.is_number() || v.get<double>() < 0 || !std::isfinite(v.get<double>())) {
           return r.error(f, "must be a number of seconds, 0 or more");
         }
         spec.sim_duration_s = v.get<double>();
         return Status::success();
       }},
      {"array",
       [&r, &spec](const std::string& f, const json& v) -> Status {
         auto s = r.string(f, v);
         if (!s) return s.status();
         if (auto n = validate_array(*s); !n) return r.error(f, "is not valid: " + n.status().message());
         spec.array = *s;
         return Status::success();
       }},
      {"time_limit",
       [&r, &spec](const std::string& f, const json& v) -> Status {
         auto s = r.string(f, v);
         if (!s) return r.error(f, "must be a Slurm time string such as \"1-00:00:00\" (or use time_limit_s)");
         auto t = parse_time_limit(*s);
         if (!t) return r.error(f, "is not valid: " + t.status().message());
         spec.time_limit_s = *t;
         return Status::success();
       }},
      {"memory", [&r, &spec](const std::string& f, const json& v) { return set_memory(r, f, v, spec); }},
      {"dependencies", [&r, &spec](const std::string& f, const json& v) { return set_dependencies(r, f, v, spec); }},
  });
}

// Where and when a job may run and whom it tells: the fields of sbatch's
// --qos, --constraint, --exclusive, --nodelist, --exclude, --signal,
// --mail-type and --mail-user (`notify`).
void add_placement_and_notify_fields(const FieldReader& r, fb::JobSpecT& spec, FieldSetters& fields) {
  for (const auto& field : {std::pair{"qos", &fb::JobSpecT::qos}, std::pair{"constraint", &fb::JobSpecT::constraint}}) {
    fields[field.first] = string_field(r, spec, field.second);
  }
  fields["exclusive"] = [&r, &spec](const std::string& f, const json& v) -> Status {
    if (!v.is_boolean()) return r.error(f, "must be true or false");
    spec.exclusive = v.get<bool>();
    return Status::success();
  };
  for (const auto& field : {std::tuple{"nodelist", &fb::JobSpecT::nodelist, true},
                            std::tuple{"exclude", &fb::JobSpecT::exclude, true},
                            std::tuple{"notify", &fb::JobSpecT::notify, false}}) {
    auto member = std::get<1>(field);
    bool hostlist = std::get<2>(field);
    fields[std::get<0>(field)] = [&r, &spec, member, hostlist](const std::string& f, const json& v) -> Status {
      auto names = names_of(r, f, v, hostlist);
      if (!names) return names.status();
      spec.*member = std::move(*names);
      return Status::success();
    };
  }
  fields["mail_type"] = [&r, &spec](const std::string& f, const json& v) -> Status {
    auto s = r.string(f, v);
    if (!s) return s.status();
    auto on = parse_mail_types(*s, nullptr);
    if (!on) return r.error(f, "is not valid: " + on.status().message());
    spec.notify_on = *on;
    return Status::success();
  };
  fields["signal"] = [&r, &spec](const std::string& f, const json& v) -> Status {
    auto s = r.string(f, v);
    if (!s) return s.status();
    auto sig = parse_signal_option(*s);
    if (!sig) return r.error(f, "is not valid: " + sig.status().message());
    spec.signal = sig->signal;
    spec.signal_before_s = sig->before_s;
    spec.signal_batch_only = sig->batch_only;
    return Status::success();
  };
}

// Applies each field of `root` that is not null; refuses a field it does not
// know, listing those it does.
Status apply_fields(const FieldReader& r, const json& root, const FieldSetters& fields) {
  for (auto& [key, value] : root.items()) {
    if (value.is_null()) continue;  // JSON null: as if absent
    auto it = fields.find(key);
    if (it == fields.end()) {
      std::string known;
      for (auto& [k, _] : fields) known += (known.empty() ? "" : ", ") + k;
      return r.error(key, "is not a job spec field (fields: " + known + ")");
    }
    if (auto s = it->second(key, value); !s) return s;
  }
  return Status::success();
}

// `root` is the document's (or an object given as it is: never copied, it
// may be nested deeper than a copy's recursion can go).
Status fill_spec(const Document& doc, const json& root, fb::JobSpecT& spec, std::string* bad_field) {
  FieldReader r(doc, bad_field);
  FieldSetters fields;
  add_plain_fields(r, spec, fields);
  add_checked_fields(r, root, spec, fields);
  add_placement_and_notify_fields(r, spec, fields);
  return apply_fields(r, root, fields);
}

}  // namespace

Result<fb::JobSpecT> parse_spec_file(std::string_view text, const std::string& path) {
  auto doc = parse_document(text, path);
  if (!doc) return doc.status();
  fb::JobSpecT spec;
  if (auto s = fill_spec(*doc, doc->root, spec, nullptr); !s) return s;
  return spec;
}

Result<fb::JobSpecT> parse_spec_object(const nlohmann::json& object, std::string* bad_field) {
  if (bad_field) bad_field->clear();
  if (!object.is_object()) return Status::invalid("a job spec must be a JSON object");
  Document doc{json(), "", nullptr};
  fb::JobSpecT spec;
  if (auto s = fill_spec(doc, object, spec, bad_field); !s) return s;
  return spec;
}

Result<fb::JobSpecT> load_spec_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid("cannot read spec file " + path + ": no such file or not readable");
  std::ostringstream os;
  os << in.rdbuf();
  return parse_spec_file(os.str(), path);
}

}  // namespace trainyard::client
