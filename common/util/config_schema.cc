#include "util/config_schema.h"

#include <algorithm>
#include <array>
#include <regex>
#include <sstream>

namespace trainyard {

// deploy/trainyard.example.toml, embedded by CMake (known_config.cc).
extern const char* const kExampleConfig;

namespace {

// Tables whose sub-table names the operator chooses: one level below each
// is a name, stored as '*'.
constexpr std::array<std::string_view, 5> kNamedTables = {"scheduler.partitions", "scheduler.quotas", "scheduler.qos",
                                                            "pools", "security.accounts"};

// Tables (or inline tables) of free keys: anything below them is data
// (label names, account names, GPU types), not a Trainyard key.
constexpr std::array<std::string_view, 8> kFreeTables = {
    "scheduler.accounts",          "scheduler.fairshare.shares",
    "scheduler.partitions.*.labels", "scheduler.quotas.*.max_gpus",
    "scheduler.quotas.*.guaranteed_gpus", "scheduler.quotas.*.max_gpus_by_type",
    "scheduler.quotas.*.guaranteed_gpus_by_type", "agent.labels"};

bool under(std::string_view key, std::string_view table) {
  return key.size() > table.size() && key.substr(0, table.size()) == table && key[table.size()] == '.';
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Every leaf key of `t` (dotted) with the node it holds.
void leaves(const toml::table& t, const std::string& prefix,
            std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (const auto& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table(); sub && !sub->empty()) {
      leaves(*sub, key, out);
    } else {
      out.emplace_back(std::move(key), &v);
    }
  }
}

}  // namespace

std::string normalize_config_key(std::string_view key) {
  for (auto table : kNamedTables) {
    if (!under(key, table)) continue;
    auto rest = key.substr(table.size() + 1);
    auto dot = rest.find('.');
    return std::string(table) + ".*" + (dot == std::string_view::npos ? "" : std::string(rest.substr(dot)));
  }
  return std::string(key);
}

ConfigSchema ConfigSchema::from_example(std::string_view text) {
  ConfigSchema s;
  static const std::regex header(R"(^#?\s*\[([A-Za-z0-9_.\-]+)\])");
  static const std::regex assignment(R"(^#?\s*([A-Za-z0-9_]+)\s*=)");
  std::istringstream in{std::string(text)};
  std::string section, line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, header)) {
      section = normalize_config_key(m[1].str());
      s.sections_.push_back(section);
    } else if (std::regex_search(line, m, assignment)) {
      s.keys_.push_back(section.empty() ? m[1].str() : section + "." + m[1].str());
    }
  }
  for (auto* v : {&s.keys_, &s.sections_}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  return s;
}

const ConfigSchema& ConfigSchema::trainyard() {
  static const ConfigSchema schema = from_example(kExampleConfig);
  return schema;
}

bool ConfigSchema::knows(std::string_view dotted_key) const {
  auto key = normalize_config_key(dotted_key);
  for (auto table : kFreeTables)
    if (key == table || under(key, table)) return true;
  if (std::binary_search(keys_.begin(), keys_.end(), key)) return true;
  // An empty table the example shows ([scheduler.partitions.x] with no keys).
  return std::binary_search(sections_.begin(), sections_.end(), key);
}

std::string ConfigSchema::closest(std::string_view key) const {
  std::string best;
  size_t best_d = SIZE_MAX;
  auto norm = normalize_config_key(key);
  for (const auto& k : keys_) {
    size_t d = edit_distance(norm, k);
    if (d < best_d) best_d = d, best = k;
  }
  // Suggest only what looks like a misspelling, not any key at all.
  return best_d <= std::max<size_t>(2, norm.size() / 4) ? best : std::string();
}

Status ConfigSchema::check(const Config& config) const {
  std::vector<std::pair<std::string, const toml::node*>> all;
  leaves(config.table(), "", all);
  std::string errors;
  for (const auto& [key, node] : all) {
    if (knows(key)) continue;
    if (!errors.empty()) errors += "; ";
    errors += "unknown config key '" + key + "'";
    const auto& src = node->source();
    if (src.path) errors += " (" + std::string(*src.path) + " line " + std::to_string(src.begin.line) + ")";
    if (auto c = closest(key); !c.empty()) errors += ": did you mean '" + c + "'?";
  }
  if (errors.empty()) return Status::success();
  return Status::invalid(errors + " (every key is listed in deploy/trainyard.example.toml)");
}

}  // namespace trainyard
