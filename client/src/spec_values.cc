// The value formats of Slurm options: times, memory sizes, GPU requests,
// array ranges and dependencies.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "trainyard/job_spec.h"

namespace trainyard::client {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A non-negative decimal integer, all of `s`.
std::optional<uint64_t> to_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    auto i = s.find(sep, start);
    out.push_back(s.substr(start, i == std::string_view::npos ? std::string_view::npos : i - start));
    if (i == std::string_view::npos) break;
    start = i + 1;
  }
  return out;
}

}  // namespace

Result<uint64_t> parse_time_limit(std::string_view text) {
  const std::string bad = "time limit '" + std::string(text) +
                          "' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)";
  auto l = lower(text);
  // Slurm's "no limit" (capped by the partition): here the partition's
  // default limit, which the scheduler fills in for 0.
  if (l == "unlimited" || l == "infinite" || l == "-1") return uint64_t{0};
  uint64_t days = 0;
  std::string_view rest = text;
  bool has_days = false;
  if (auto dash = text.find('-'); dash != std::string_view::npos) {
    auto d = to_u64(text.substr(0, dash));
    if (!d) return Status::invalid(bad);
    days = *d;
    has_days = true;
    rest = text.substr(dash + 1);
  }
  auto parts = split(rest, ':');
  if (parts.size() > 3) return Status::invalid(bad);
  std::vector<uint64_t> n;
  for (auto p : parts) {
    auto v = to_u64(p);
    if (!v) return Status::invalid(bad);
    n.push_back(*v);
  }
  // Bounded parts keep the sums below from wrapping (100 years at most).
  constexpr uint64_t kMaxSeconds = 100ull * 366 * 86400;
  if (days > kMaxSeconds / 86400 || std::any_of(n.begin(), n.end(), [](uint64_t v) { return v > kMaxSeconds / 60; })) {
    return Status::invalid("time limit '" + std::string(text) + "' is too long (at most 100 years)");
  }
  uint64_t seconds = 0;
  if (has_days) {
    // D-HH, D-HH:MM, D-HH:MM:SS
    seconds = days * 86400 + n[0] * 3600;
    if (n.size() > 1) seconds += n[1] * 60;
    if (n.size() > 2) seconds += n[2];
  } else if (n.size() == 1) {
    seconds = n[0] * 60;  // MM
  } else if (n.size() == 2) {
    seconds = n[0] * 60 + n[1];  // MM:SS
  } else {
    seconds = n[0] * 3600 + n[1] * 60 + n[2];  // HH:MM:SS
  }
  if (seconds > kMaxSeconds) return Status::invalid("time limit '" + std::string(text) + "' is too long (at most 100 years)");
  if (seconds == 0) return Status::invalid("time limit '" + std::string(text) + "' is zero; give a positive time");
  return seconds;
}

Result<uint64_t> parse_memory_mb(std::string_view text) {
  const std::string bad = "memory '" + std::string(text) + "' is not a size (a number with an optional K, M, G or T suffix)";
  std::string_view t = text;
  if (!t.empty() && (t.back() == 'b' || t.back() == 'B') && t.size() >= 2 && std::isalpha(static_cast<unsigned char>(t[t.size() - 2]))) {
    t.remove_suffix(1);
  }
  uint64_t kib_per_unit = 1024;  // megabytes by default
  if (!t.empty() && std::isalpha(static_cast<unsigned char>(t.back()))) {
    switch (std::tolower(static_cast<unsigned char>(t.back()))) {
      case 'k': kib_per_unit = 1; break;
      case 'm': kib_per_unit = 1024; break;
      case 'g': kib_per_unit = 1024 * 1024; break;
      case 't': kib_per_unit = 1024ull * 1024 * 1024; break;
      default: return Status::invalid(bad);
    }
    t.remove_suffix(1);
  }
  auto v = to_u64(t);
  if (!v) return Status::invalid(bad);
  if (*v > std::numeric_limits<uint64_t>::max() / kib_per_unit) return Status::invalid("memory '" + std::string(text) + "' is too large");
  uint64_t kib = *v * kib_per_unit;
  return (kib + 1023) / 1024;
}

Result<GpuRequest> parse_gpu_count(std::string_view text) {
  GpuRequest r;
  std::string_view count = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    r.type = std::string(text.substr(0, colon));
    count = text.substr(colon + 1);
    if (r.type.empty() || r.type.find(':') != std::string::npos) {
      return Status::invalid("GPU request '" + std::string(text) + "' is not N or TYPE:N");
    }
  }
  auto n = to_u64(count);
  if (!n || *n > 1024) return Status::invalid("GPU request '" + std::string(text) + "' is not N or TYPE:N (N a whole number)");
  r.count = static_cast<uint32_t>(*n);
  return r;
}

Result<GpuRequest> parse_gres(std::string_view text) {
  std::string_view t = text;
  if (t.substr(0, 5) == "gres/") t.remove_prefix(5);
  if (t.find(',') != std::string_view::npos) {
    return Status::invalid("--gres '" + std::string(text) + "': only one generic resource, gpu, is supported");
  }
  auto parts = split(t, ':');
  if (parts[0] != "gpu") {
    return Status::invalid("--gres '" + std::string(text) + "': only gpu is supported as a generic resource (gpu[:TYPE]:N)");
  }
  GpuRequest r;
  r.count = 1;
  if (parts.size() == 2) {
    if (auto n = to_u64(parts[1])) {
      if (*n > 1024) return Status::invalid("--gres '" + std::string(text) + "': too many GPUs");
      r.count = static_cast<uint32_t>(*n);
    } else {
      r.type = std::string(parts[1]);
    }
  } else if (parts.size() == 3) {
    r.type = std::string(parts[1]);
    auto n = to_u64(parts[2]);
    if (!n) return Status::invalid("--gres '" + std::string(text) + "': the GPU count '" + std::string(parts[2]) + "' is not a number");
    if (*n > 1024) return Status::invalid("--gres '" + std::string(text) + "': too many GPUs");
    r.count = static_cast<uint32_t>(*n);
  } else if (parts.size() > 3) {
    return Status::invalid("--gres '" + std::string(text) + "' is not gpu[:TYPE]:N");
  }
  if (r.type.empty() && parts.size() == 2 && parts[1].empty()) {
    return Status::invalid("--gres '" + std::string(text) + "' is not gpu[:TYPE]:N");
  }
  if (r.count > 1024) return Status::invalid("--gres '" + std::string(text) + "': too many GPUs");
  return r;
}

Result<uint64_t> validate_array(std::string_view text) {
  const std::string bad = "array '" + std::string(text) +
                          "' is not a list of indices and ranges (e.g. 0-99%8, 1,3,5 or 0-15:4)";
  std::string_view items = text;
  if (auto pct = text.find('%'); pct != std::string_view::npos) {
    auto max = to_u64(text.substr(pct + 1));
    if (!max || *max == 0) return Status::invalid(bad + ": the number after % must be positive");
    items = text.substr(0, pct);
  }
  if (items.empty()) return Status::invalid(bad);
  uint64_t count = 0;
  for (auto item : split(items, ',')) {
    uint64_t step = 1;
    if (auto colon = item.find(':'); colon != std::string_view::npos) {
      auto s = to_u64(item.substr(colon + 1));
      if (!s || *s == 0) return Status::invalid(bad + ": a step must be a positive number");
      step = *s;
      item = item.substr(0, colon);
    }
    auto dash = item.find('-');
    auto first = to_u64(item.substr(0, dash));
    if (!first) return Status::invalid(bad);
    uint64_t last = *first;
    if (dash != std::string_view::npos) {
      auto l = to_u64(item.substr(dash + 1));
      if (!l) return Status::invalid(bad);
      last = *l;
      if (last < *first) return Status::invalid(bad + ": range " + std::string(item) + " ends before it starts");
    }
    uint64_t span = (last - *first) / step;  // + 1 would wrap for 0-18446744073709551615
    count += std::min<uint64_t>(span, 1'000'000) + 1;
    if (count > 1'000'000) return Status::invalid("array '" + std::string(text) + "' has more than 1,000,000 tasks");
  }
  return count;
}

Result<std::vector<fb::DependencyT>> parse_dependency(std::string_view text) {
  if (text.find('?') != std::string_view::npos) {
    return Status::invalid("dependency '" + std::string(text) +
                           "': '?' (any of several) is not supported; join conditions with ',' (all must hold)");
  }
  std::vector<fb::DependencyT> out;
  for (auto part : split(text, ',')) {
    auto fields = split(part, ':');
    auto kind_name = lower(fields[0]);
    fb::DependencyKind kind;
    if (kind_name == "afterok") {
      kind = fb::DependencyKind::AfterOk;
    } else if (kind_name == "afterany") {
      kind = fb::DependencyKind::AfterAny;
    } else if (kind_name == "afternotok") {
      kind = fb::DependencyKind::AfterNotOk;
    } else {
      return Status::invalid("dependency '" + std::string(part) + "': '" + std::string(fields[0]) +
                             "' is not supported; use afterok:ID, afterany:ID or afternotok:ID");
    }
    if (fields.size() < 2) return Status::invalid("dependency '" + std::string(part) + "' names no job id");
    for (size_t i = 1; i < fields.size(); ++i) {
      auto id = to_u64(fields[i]);
      if (!id || *id == 0) {
        return Status::invalid("dependency '" + std::string(part) + "': '" + std::string(fields[i]) +
                               "' is not a job id (a positive number)");
      }
      fb::DependencyT d;
      d.kind = kind;
      d.job_id = *id;
      out.push_back(d);
    }
  }
  return out;
}

}  // namespace trainyard::client
