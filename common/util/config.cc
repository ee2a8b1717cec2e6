#include "util/config.h"

#include <sstream>
#include <stdexcept>

namespace trainyard {
namespace {

std::string where(const toml::source_region& r, const std::string& fallback) {
  std::ostringstream os;
  if (r.path) {
    os << *r.path;
  } else {
    os << fallback;
  }
  os << ":" << r.begin.line;
  return os.str();
}

}  // namespace

Result<Config> Config::parse(std::string_view text, const std::string& source) {
  Config c;
  c.source_ = source;
  try {
    c.table_ = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config " << source << " line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
       << e.description();
    return Status::invalid(os.str());
  }
  return c;
}

Result<Config> Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  Config c;
  if (!path.empty()) {
    c.source_ = path;
    try {
      c.table_ = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      std::ostringstream os;
      os << "config " << path << " line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
         << e.description();
      return Status::invalid(os.str());
    }
  } else {
    c.source_ = "<defaults>";
  }
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::invalid("override '" + o + "' is not of the form section.key=value");
    }
    auto s = c.set(std::string_view(o).substr(0, eq), std::string_view(o).substr(eq + 1));
    if (!s) return s;
  }
  return c;
}

Status Config::set(std::string_view key, std::string_view value) {
  // Walk (and create) the tables on the dotted path.
  toml::table* tbl = &table_;
  std::string k(key);
  size_t start = 0;
  for (auto dot = k.find('.'); dot != std::string::npos; dot = k.find('.', start)) {
    auto part = k.substr(start, dot - start);
    if (!tbl->get(part)) tbl->insert(part, toml::table{});
    auto* child = tbl->get(part);
    if (!child->is_table()) return Status::invalid("override '" + k + "': '" + part + "' is not a table");
    tbl = child->as_table();
    start = dot + 1;
  }
  auto leaf = k.substr(start);
  if (leaf.empty()) return Status::invalid("override '" + k + "' has an empty key");
  try {
    auto parsed = toml::parse(std::string_view("v = " + std::string(value)), std::string_view("override"));
    tbl->insert_or_assign(leaf, *parsed.get("v"));
  } catch (const toml::parse_error&) {
    tbl->insert_or_assign(leaf, std::string(value));  // not a TOML value: a bare string
  }
  return Status::success();
}

toml::node_view<const toml::node> Config::node(std::string_view key) const {
  return table_.at_path(key);
}

bool Config::has(std::string_view key) const { return static_cast<bool>(node(key)); }

void Config::type_error(std::string_view key, const char* want) const {
  auto n = node(key);
  std::string at = !n                                  ? std::string(" (default)")
                   : n.node()->source().begin.line == 0 ? std::string(" (set on the command line)")
                                                        : " (" + where(n.node()->source(), source_) + ")";
  throw std::runtime_error("config key '" + std::string(key) + "'" + at + " must be " + want);
}

std::string Config::get_string(std::string_view key, const std::string& def) const {
  auto n = node(key);
  if (!n) return def;
  if (auto v = n.value<std::string>(); v && n.is_string()) return *v;
  type_error(key, "a string");
}

int64_t Config::get_int(std::string_view key, int64_t def) const {
  auto n = node(key);
  if (!n) return def;
  if (n.is_integer()) return *n.value<int64_t>();
  type_error(key, "an integer");
}

int64_t Config::get_int(std::string_view key, int64_t def, int64_t min, int64_t max) const {
  int64_t v = get_int(key, def);
  if (v < min || v > max) {
    type_error(key, ("between " + std::to_string(min) + " and " + std::to_string(max) + ", not " +
                     std::to_string(v)).c_str());
  }
  return v;
}

double Config::get_double(std::string_view key, double def, double min, double max) const {
  double v = get_double(key, def);
  if (!(v >= min && v <= max)) {
    std::ostringstream os;
    os << "between " << min << " and " << max << ", not " << v;
    type_error(key, os.str().c_str());
  }
  return v;
}

double Config::get_double(std::string_view key, double def) const {
  auto n = node(key);
  if (!n) return def;
  if (n.is_number()) return *n.value<double>();
  type_error(key, "a number");
}

std::vector<std::string> Config::get_strings(std::string_view key, const std::vector<std::string>& def) const {
  auto v = get_strings(key);
  return v.empty() ? def : v;
}

bool Config::get_bool(std::string_view key, bool def) const {
  auto n = node(key);
  if (!n) return def;
  if (n.is_boolean()) return *n.value<bool>();
  type_error(key, "true or false");
}

std::vector<std::string> Config::get_strings(std::string_view key) const {
  std::vector<std::string> out;
  auto n = node(key);
  if (!n) return out;
  if (n.is_string()) return {*n.value<std::string>()};
  if (!n.is_array()) type_error(key, "a list of strings");
  for (auto& e : *n.as_array()) {
    if (!e.is_string()) type_error(key, "a list of strings");
    out.push_back(*e.value<std::string>());
  }
  return out;
}

}  // namespace trainyard
