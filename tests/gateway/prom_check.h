// A strict reader of the Prometheus text exposition format (0.0.4), for
// tests: it rejects what a Prometheus server would reject or misread
// (bad names, bad escapes, a TYPE after samples, families split apart,
// duplicate series, non-cumulative histograms) and returns the samples.
#pragma once

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace trainyard::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromText {
  std::map<std::string, std::string> types;  // family -> type
  std::vector<PromSample> samples;
  // The value of the one sample with this name and these labels (a subset).
  std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        all = all && it != s.labels.end() && it->second == v;
      }
      if (all) return s.value;
    }
    return std::nullopt;
  }
  // Same, NaN when absent (printable in test assertions).
  double get(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    return value(name, labels).value_or(NAN);
  }
};

inline bool prom_name_ok(const std::string& n, bool label) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return !(label && n.rfind("__", 0) == 0);
}

inline std::optional<double> prom_value(const std::string& s) {
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  if (s == "NaN") return NAN;
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// Parses `text`; on the first violation returns nullopt and sets `error`
// to the line and the rule broken.
inline std::optional<PromText> parse_prometheus(const std::string& text, std::string* error) {
  PromText out;
  auto fail = [&](size_t line, const std::string& why) {
    *error = "line " + std::to_string(line) + ": " + why;
    return std::nullopt;
  };
  if (!text.empty() && text.back() != '\n') return fail(0, "the exposition must end with a newline");
  std::set<std::string> helped, finished_families, series;
  std::string current_family;
  size_t lineno = 0, start = 0;
  auto family_of = [&](const std::string& name) {
    for (const char* suf : {"_bucket", "_sum", "_count", "_total", "_created"}) {
      std::string s = suf;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        std::string base = name.substr(0, name.size() - s.size());
        if (out.types.count(base)) return base;
      }
    }
    return name;
  };
  while (start < text.size()) {
    auto end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++lineno;
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        auto rest = line.substr(7);
        auto sp = rest.find(' ');
        std::string name = rest.substr(0, sp);
        if (!prom_name_ok(name, false)) return fail(lineno, "bad metric name '" + name + "'");
        if (finished_families.count(name)) return fail(lineno, "family '" + name + "' appears twice (split apart)");
        if (current_family != name) {
          if (!current_family.empty()) finished_families.insert(current_family);
          current_family = name;
        }
        if (line[2] == 'H') {
          if (!helped.insert(name).second) return fail(lineno, "second HELP for " + name);
        } else {
          if (sp == std::string::npos) return fail(lineno, "TYPE without a type");
          std::string type = rest.substr(sp + 1);
          static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary", "untyped"};
          if (!kTypes.count(type)) return fail(lineno, "unknown type '" + type + "'");
          if (out.types.count(name)) return fail(lineno, "second TYPE for " + name);
          for (const auto& s : out.samples) {
            if (family_of(s.name) == name) return fail(lineno, "TYPE for " + name + " after its samples");
          }
          out.types[name] = type;
        }
      }
      continue;  // other comments are allowed
    }
    PromSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!prom_name_ok(s.name, false)) return fail(lineno, "bad metric name '" + s.name + "'");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) return fail(lineno, "label without '='");
        std::string ln = line.substr(i, eq - i);
        if (!prom_name_ok(ln, true)) return fail(lineno, "bad label name '" + ln + "'");
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') return fail(lineno, "label value must be quoted");
        ++i;
        std::string v;
        while (true) {
          if (i >= line.size()) return fail(lineno, "unterminated label value");
          char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) return fail(lineno, "dangling backslash");
            char e = line[i++];
            if (e == 'n') {
              v.push_back('\n');
            } else if (e == '\\' || e == '"') {
              v.push_back(e);
            } else {
              return fail(lineno, std::string("bad escape \\") + e);
            }
          } else {
            v.push_back(c);
          }
        }
        if (!s.labels.emplace(ln, v).second) return fail(lineno, "duplicate label " + ln);
        if (i < line.size() && line[i] == ',') ++i;
      }
    }
    if (i >= line.size() || line[i] != ' ') return fail(lineno, "expected a space before the value");
    std::string rest = line.substr(i + 1);
    auto sp = rest.find(' ');
    auto v = prom_value(rest.substr(0, sp));
    if (!v) return fail(lineno, "bad value '" + rest.substr(0, sp) + "'");
    if (sp != std::string::npos && !prom_value(rest.substr(sp + 1))) return fail(lineno, "bad timestamp");
    s.value = *v;
    std::string fam = family_of(s.name);
    if (finished_families.count(fam)) return fail(lineno, "sample of family '" + fam + "' after another family began");
    if (current_family != fam) {
      if (!current_family.empty()) finished_families.insert(current_family);
      current_family = fam;
    }
    std::string key = s.name;
    for (const auto& [k, val] : s.labels) key += "|" + k + "=" + val;
    if (!series.insert(key).second) return fail(lineno, "duplicate series " + key);
    auto t = out.types.find(fam);
    if (t != out.types.end() && t->second == "histogram") {
      bool ok = s.name == fam + "_bucket" || s.name == fam + "_sum" || s.name == fam + "_count";
      if (!ok) return fail(lineno, "histogram sample " + s.name + " is not _bucket/_sum/_count");
      if (s.name == fam + "_bucket" && !s.labels.count("le")) return fail(lineno, "bucket without le");
    }
    if (t != out.types.end() && t->second == "counter" && s.value < 0) return fail(lineno, "negative counter");
    out.samples.push_back(std::move(s));
  }
  // Histograms: cumulative buckets ending in +Inf equal to _count.
  for (const auto& [fam, type] : out.types) {
    if (type != "histogram") continue;
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // other labels -> (le, n)
    std::map<std::string, double> counts;
    for (const auto& s : out.samples) {
      std::string others;
      for (const auto& [k, v] : s.labels) {
        if (k != "le") others += k + "=" + v + ",";
      }
      if (s.name == fam + "_bucket") buckets[others].push_back({*prom_value(s.labels.at("le")), s.value});
      if (s.name == fam + "_count") counts[others] = s.value;
    }
    for (auto& [others, b] : buckets) {
      for (size_t k = 1; k < b.size(); ++k) {
        if (b[k].first <= b[k - 1].first) return fail(0, fam + ": buckets not in increasing le order");
        if (b[k].second < b[k - 1].second) return fail(0, fam + ": buckets not cumulative");
      }
      if (b.empty() || !std::isinf(b.back().first)) return fail(0, fam + ": no le=\"+Inf\" bucket");
      if (!counts.count(others) || counts[others] != b.back().second) return fail(0, fam + ": +Inf bucket != _count");
    }
  }
  return out;
}

}  // namespace trainyard::testing
