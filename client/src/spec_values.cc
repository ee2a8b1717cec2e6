// The value formats of Slurm options: times, memory sizes, GPU requests,
// begin times, signals, array ranges and dependencies.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <limits>

#include "trainyard/job_spec.h"

#include "decimal.h"

namespace trainyard::client {

using detail::to_u64;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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

namespace {

// "HH:MM" or "HH:MM:SS": seconds into the day.
std::optional<int64_t> clock_seconds(std::string_view s) {
  auto f = split(s, ':');
  if (f.size() < 2 || f.size() > 3) return std::nullopt;
  auto h = to_u64(f[0]), m = to_u64(f[1]);
  auto sec = f.size() == 3 ? to_u64(f[2]) : std::optional<uint64_t>(0);
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 59) return std::nullopt;
  return static_cast<int64_t>(*h * 3600 + *m * 60 + *sec);
}

// "YYYY-MM-DD" or "MM/DD[/YY]" (this year when YY is absent).
std::optional<std::chrono::sys_days> calendar_day(std::string_view s, std::chrono::year this_year) {
  using namespace std::chrono;
  std::optional<uint64_t> y, m, d;
  if (auto f = split(s, '-'); f.size() == 3 && f[0].size() == 4) {
    y = to_u64(f[0]), m = to_u64(f[1]), d = to_u64(f[2]);
  } else if (auto g = split(s, '/'); g.size() == 2 || g.size() == 3) {
    m = to_u64(g[0]), d = to_u64(g[1]);
    y = g.size() == 3 ? to_u64(g[2]) : std::optional<uint64_t>(static_cast<int>(this_year));
    if (y && *y < 100) *y += 2000;
  }
  if (!y || !m || !d || *y > 9999 || *m > 12 || *d > 31) return std::nullopt;
  year_month_day ymd{year{static_cast<int>(*y)}, month{static_cast<unsigned>(*m)}, day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  return sys_days{ymd};
}

// "N" or "N" + a unit: seconds when none.
std::optional<int64_t> offset_seconds(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  auto n = to_u64(s.substr(0, digits));
  if (!n || *n > (uint64_t{1} << 32)) return std::nullopt;
  std::string unit = lower(s.substr(digits));
  if (!unit.empty() && unit.back() == 's' && unit.size() > 1) unit.pop_back();
  int64_t per = 0;
  if (unit.empty() || unit == "sec" || unit == "second") per = 1;
  if (unit == "min" || unit == "minute") per = 60;
  if (unit == "hour") per = 3600;
  if (unit == "day") per = 86400;
  if (unit == "week") per = 7 * 86400;
  if (per == 0) return std::nullopt;
  return static_cast<int64_t>(*n) * per;
}

}  // namespace

Result<int64_t> parse_begin_time(std::string_view text, int64_t now_ns, int64_t utc_offset_s) {
  using namespace std::chrono;
  const std::string bad = "--begin '" + std::string(text) +
                          "' is not a time Trainyard reads: now+N[seconds|minutes|hours|days|weeks], HH:MM[:SS], "
                          "YYYY-MM-DD[THH:MM[:SS]], MM/DD[/YY], today, tomorrow, midnight, noon";
  constexpr int64_t kNs = 1'000'000'000;
  const int64_t local_now = now_ns / kNs + utc_offset_s;
  const sys_days today = floor<days>(sys_seconds{seconds{local_now}});
  const int64_t now_in_day = local_now - today.time_since_epoch().count() * 86400;
  auto at = [&](sys_days d, int64_t second_of_day) -> int64_t {
    return (d.time_since_epoch().count() * 86400 + second_of_day - utc_offset_s) * kNs;
  };
  std::string t = lower(text);
  if (t == "now") return now_ns;
  if (t.rfind("now+", 0) == 0) {
    auto off = offset_seconds(std::string_view(t).substr(4));
    if (!off) return Status::invalid(bad);
    return now_ns + *off * kNs;
  }
  const std::pair<const char*, int64_t> named[] = {
      {"today", 0}, {"midnight", 86400}, {"noon", 12 * 3600}, {"fika", 15 * 3600}, {"teatime", 16 * 3600}};
  for (auto& [name, second] : named) {
    if (t != name) continue;
    // midnight is the coming one; noon and teatime today, or tomorrow once past.
    if (second != 0 && second != 86400 && second <= now_in_day) return at(today + days{1}, second);
    return at(today, second);
  }
  if (t == "tomorrow") return at(today + days{1}, 0);
  if (auto c = clock_seconds(t)) return *c > now_in_day ? at(today, *c) : at(today + days{1}, *c);
  auto tpos = t.find('t');
  auto day = calendar_day(std::string_view(t).substr(0, tpos), year_month_day{today}.year());
  if (!day) return Status::invalid(bad);
  int64_t second = 0;
  if (tpos != std::string::npos) {
    auto c = clock_seconds(std::string_view(t).substr(tpos + 1));
    if (!c) return Status::invalid(bad);
    second = *c;
  }
  return at(*day, second);
}

Result<SignalRequest> parse_signal_option(std::string_view text) {
  const std::string bad = "--signal '" + std::string(text) +
                          "' is not [B:]SIG[@TIME] (SIG a signal number or name such as USR1, TIME seconds)";
  SignalRequest r;
  std::string_view s = text;
  if (s.size() > 2 && s[1] == ':') {
    char flag = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    if (flag == 'R') return Status::invalid("--signal '" + std::string(text) + "': R: (reservations) is not supported");
    if (flag != 'B') return Status::invalid(bad);
    r.batch_only = true;
    s.remove_prefix(2);
  }
  auto at = s.find('@');
  std::string name = lower(s.substr(0, at));
  if (at != std::string_view::npos) {
    auto t = to_u64(s.substr(at + 1));
    if (!t || *t > 65535) return Status::invalid(bad + "; TIME is 0 to 65535");
    r.before_s = static_cast<uint32_t>(*t);
  }
  if (auto n = to_u64(name)) {
    r.signal = *n >= 1 && *n <= 64 ? static_cast<int>(*n) : 0;
  } else {
    if (name.rfind("sig", 0) == 0) name = name.substr(3);
    // Linux's numbers: the signal is sent on the node, which runs Linux.
    const std::pair<const char*, int> names[] = {
        {"hup", 1},   {"int", 2},   {"quit", 3},  {"abrt", 6},    {"kill", 9},   {"usr1", 10},  {"segv", 11},
        {"usr2", 12}, {"pipe", 13}, {"alrm", 14}, {"term", 15},   {"cont", 18},  {"stop", 19},  {"tstp", 20},
        {"urg", 23},  {"xcpu", 24}, {"xfsz", 25}, {"vtalrm", 26}, {"prof", 27},  {"winch", 28}, {"io", 29},
        {"poll", 29}, {"pwr", 30},  {"sys", 31}};
    for (auto& [n, v] : names) {
      if (name == n) r.signal = v;
    }
  }
  if (r.signal == 0) return Status::invalid(bad);
  return r;
}

Result<std::vector<std::string>> expand_hostlist(std::string_view text) {
  constexpr size_t kMaxNames = 1024;
  const std::string bad = "host list '" + std::string(text) + "' is not node names such as gpu[01-04,07],cpu1";
  std::vector<std::string> out;
  // Items are separated by commas outside brackets.
  std::vector<std::string_view> items;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || (text[i] == ',' && depth == 0)) {
      items.push_back(text.substr(start, i - start));
      start = i + 1;
    } else if (text[i] == '[') {
      ++depth;
    } else if (text[i] == ']') {
      --depth;
    }
    if (depth < 0 || depth > 1) return Status::invalid(bad);
  }
  if (depth != 0) return Status::invalid(bad);
  for (auto item : items) {
    if (item.empty()) return Status::invalid(bad);
    auto open = item.find('[');
    if (open == std::string_view::npos) {
      if (item.find(']') != std::string_view::npos) return Status::invalid(bad);
      out.emplace_back(item);
    } else {
      auto close = item.find(']', open);
      std::string_view prefix = item.substr(0, open), suffix = item.substr(close + 1);
      if (suffix.find_first_of("[]") != std::string_view::npos) {
        return Status::invalid(bad + "; one [...] group a name is supported");
      }
      for (auto range : split(item.substr(open + 1, close - open - 1), ',')) {
        auto dash = range.find('-');
        std::string_view lo = range.substr(0, dash);
        std::string_view hi = dash == std::string_view::npos ? lo : range.substr(dash + 1);
        auto a = to_u64(lo), b = to_u64(hi);
        if (!a || !b || *a > *b || *b - *a >= kMaxNames) return Status::invalid(bad);
        for (uint64_t v = *a; v <= *b; ++v) {
          std::string digits = std::to_string(v);
          if (digits.size() < lo.size()) digits.insert(0, lo.size() - digits.size(), '0');
          out.push_back(std::string(prefix) + digits + std::string(suffix));
          if (out.size() > kMaxNames) break;
        }
      }
    }
    if (out.size() > kMaxNames) {
      return Status::invalid("host list '" + std::string(text) + "' names more than " + std::to_string(kMaxNames) +
                             " nodes");
    }
  }
  return out;
}

Result<fb::NotifyOn> parse_mail_types(std::string_view text, std::vector<std::string>* ignored) {
  fb::NotifyOn on = fb::NotifyOn::NONE;
  for (auto part : split(text, ',')) {
    std::string t(part);
    for (auto& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (t == "NONE") {
      on = fb::NotifyOn::NONE;
    } else if (t == "BEGIN") {
      on |= fb::NotifyOn::Begin;
    } else if (t == "END") {
      on |= fb::NotifyOn::End;
    } else if (t == "FAIL") {
      on |= fb::NotifyOn::Fail;
    } else if (t == "REQUEUE") {
      on |= fb::NotifyOn::Requeue;
    } else if (t == "TIME_LIMIT") {
      on |= fb::NotifyOn::TimeLimit;
    } else if (t == "ALL") {
      on |= fb::NotifyOn::Begin | fb::NotifyOn::End | fb::NotifyOn::Fail | fb::NotifyOn::Requeue;
    } else if (t == "TIME_LIMIT_50" || t == "TIME_LIMIT_80" || t == "TIME_LIMIT_90" || t == "ARRAY_TASKS" ||
               t == "INVALID_DEPEND" || t == "STAGE_OUT") {
      if (ignored) ignored->push_back(t);
    } else {
      return Status::invalid("--mail-type '" + t +
                             "' is not a notification type: BEGIN, END, FAIL, REQUEUE, TIME_LIMIT, ALL or NONE");
    }
  }
  return on;
}

}  // namespace trainyard::client
