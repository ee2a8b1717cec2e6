#include "core/slurm_env.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

namespace trainyard::agent {
namespace {

std::optional<int64_t> to_int(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string padded(uint64_t v, size_t width) {
  std::string s = std::to_string(v);
  if (s.size() < width) s.insert(0, width - s.size(), '0');
  return s;
}

}  // namespace

std::string compress_hostlist(const std::vector<std::string>& hosts) {
  // (prefix, width) -> numbers; width 0: numbers written without padding.
  std::map<std::pair<std::string, size_t>, std::set<uint64_t>> groups;
  std::set<std::string> plain;
  struct Parsed {
    std::string prefix;
    uint64_t value;
    size_t width;
    bool padded;
  };
  std::vector<Parsed> numbered;
  for (const auto& h : hosts) {
    size_t k = h.size();
    while (k > 0 && h[k - 1] >= '0' && h[k - 1] <= '9') --k;
    std::string_view digits(h.data() + k, h.size() - k);
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || digits.size() > 18 || ec != std::errc() || p != digits.data() + digits.size()) {
      plain.insert(h);
      continue;
    }
    numbered.push_back({h.substr(0, k), v, digits.size(), digits.size() > 1 && digits[0] == '0'});
  }
  for (auto& n : numbered) {
    if (n.padded) groups[{n.prefix, n.width}];
  }
  for (auto& n : numbered) {
    // An unpadded number as wide as a padded group's joins it ("node10" with "node09").
    bool join = n.padded || groups.count({n.prefix, n.width});
    groups[{n.prefix, join ? n.width : 0}].insert(n.value);
  }
  std::vector<std::string> parts(plain.begin(), plain.end());
  for (auto& [key, values] : groups) {
    if (values.empty()) continue;
    const auto& [prefix, width] = key;
    if (values.size() == 1) {
      parts.push_back(prefix + padded(*values.begin(), width));
      continue;
    }
    std::string ranges;
    auto it = values.begin();
    while (it != values.end()) {
      uint64_t first = *it, last = *it;
      for (++it; it != values.end() && *it == last + 1; ++it) last = *it;
      if (!ranges.empty()) ranges += ',';
      ranges += padded(first, width);
      if (last != first) ranges += "-" + padded(last, width);
    }
    parts.push_back(prefix + "[" + ranges + "]");
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (auto& p : parts) {
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

std::optional<ArraySummary> summarize_array(std::string_view expression) {
  constexpr size_t kMaxTasks = 1'000'000;
  if (auto pct = expression.find('%'); pct != std::string_view::npos) expression = expression.substr(0, pct);
  std::set<int64_t> indices;
  while (!expression.empty()) {
    auto comma = expression.find(',');
    std::string_view item = expression.substr(0, comma);
    expression = comma == std::string_view::npos ? std::string_view() : expression.substr(comma + 1);
    int64_t step = 1;
    if (auto colon = item.find(':'); colon != std::string_view::npos) {
      auto s = to_int(item.substr(colon + 1));
      if (!s || *s <= 0) return std::nullopt;
      step = *s;
      item = item.substr(0, colon);
    }
    auto dash = item.find('-', 1);
    auto lo = to_int(item.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : to_int(item.substr(dash + 1));
    if (!lo || !hi || *lo < 0 || *hi < *lo) return std::nullopt;
    for (int64_t i = *lo; i <= *hi; i += step) {
      indices.insert(i);
      if (indices.size() > kMaxTasks) return std::nullopt;
    }
  }
  if (indices.empty()) return std::nullopt;
  ArraySummary s;
  s.count = indices.size();
  s.min = *indices.begin();
  s.max = *indices.rbegin();
  if (indices.size() > 1) {
    auto second = std::next(indices.begin());
    s.step = *second - *indices.begin();
    for (auto a = indices.begin(), b = second; b != indices.end(); ++a, ++b) {
      if (*b - *a != s.step) {
        s.step = 1;
        break;
      }
    }
  }
  return s;
}

std::map<std::string, std::string> slurm_variables(const SlurmFacts& f) {
  std::map<std::string, std::string> env;
  auto both = [&env](const std::string& slurm, const std::string& ty, const std::string& value) {
    env["SLURM_" + slurm] = value;
    env["TY_" + ty] = value;
  };
  auto n = [](auto v) { return std::to_string(v); };
  std::vector<std::string> nodes = f.nodes.empty() ? std::vector<std::string>{f.node} : f.nodes;
  uint32_t nnodes = static_cast<uint32_t>(nodes.size());
  uint32_t ntasks = f.ntasks ? f.ntasks : (f.ntasks_per_node ? f.ntasks_per_node * nnodes : nnodes);
  uint32_t per_node = f.ntasks_per_node ? f.ntasks_per_node : (ntasks + nnodes - 1) / nnodes;

  both("JOB_ID", "JOB_ID", n(f.job_id));
  env["SLURM_JOBID"] = n(f.job_id);
  both("JOB_NAME", "JOB_NAME", f.job_name);
  if (f.array_job_id != 0 && f.array_index >= 0) {
    both("ARRAY_JOB_ID", "ARRAY_JOB_ID", n(f.array_job_id));
    both("ARRAY_TASK_ID", "ARRAY_INDEX", n(f.array_index));
    if (auto a = summarize_array(f.array_expression)) {
      both("ARRAY_TASK_COUNT", "ARRAY_TASK_COUNT", n(a->count));
      both("ARRAY_TASK_MIN", "ARRAY_TASK_MIN", n(a->min));
      both("ARRAY_TASK_MAX", "ARRAY_TASK_MAX", n(a->max));
      both("ARRAY_TASK_STEP", "ARRAY_TASK_STEP", n(a->step));
    }
  } else if (f.array_index >= 0) {
    env["TY_ARRAY_INDEX"] = n(f.array_index);
  }
  std::string hostlist = compress_hostlist(nodes);
  env["SLURM_JOB_NODELIST"] = hostlist;
  env["SLURM_NODELIST"] = hostlist;
  both("JOB_NUM_NODES", "NUM_NODES", n(nnodes));
  env["SLURM_NNODES"] = n(nnodes);
  both("NTASKS", "NTASKS", n(ntasks));
  env["SLURM_NPROCS"] = n(ntasks);
  both("NTASKS_PER_NODE", "NTASKS_PER_NODE", n(per_node));
  env["SLURM_TASKS_PER_NODE"] = nnodes > 1 ? n(per_node) + "(x" + n(nnodes) + ")" : n(per_node);
  // As Slurm: set only when the job asked for it.
  if (f.cpus_per_task) both("CPUS_PER_TASK", "CPUS_PER_TASK", n(f.cpus_per_task));
  uint32_t cpus = std::max<uint32_t>(1, f.cpus_on_node);
  both("CPUS_ON_NODE", "CPUS_ON_NODE", n(cpus));
  env["SLURM_JOB_CPUS_PER_NODE"] = nnodes > 1 ? n(cpus) + "(x" + n(nnodes) + ")" : n(cpus);
  both("GPUS_ON_NODE", "GPUS_ON_NODE", n(f.gpus_on_node));
  if (f.gpus_on_node) env["SLURM_JOB_GPUS"] = f.gpu_list;
  if (f.memory_mb) both("MEM_PER_NODE", "MEM_PER_NODE", n(f.memory_mb));
  if (!f.submit_dir.empty()) both("SUBMIT_DIR", "SUBMIT_DIR", f.submit_dir);
  if (!f.submit_host.empty()) both("SUBMIT_HOST", "SUBMIT_HOST", f.submit_host);
  if (!f.partition.empty()) both("JOB_PARTITION", "PARTITION", f.partition);
  if (!f.account.empty()) both("JOB_ACCOUNT", "ACCOUNT", f.account);
  if (!f.user.empty()) both("JOB_USER", "USER", f.user);
  both("NODEID", "NODE_RANK", n(f.node_rank));
  // The batch script is one task per node here: its rank is the node's.
  both("PROCID", "PROCID", n(f.node_rank));
  both("LOCALID", "LOCALID", "0");
  env["SLURMD_NODENAME"] = f.node;
  env["SLURM_CLUSTER_NAME"] = "trainyard";
  both("RESTART_COUNT", "RESTART_COUNT", n(f.attempt > 0 ? f.attempt - 1 : 0));
  if (!f.tmpdir.empty()) both("TMPDIR", "TMPDIR", f.tmpdir);
  return env;
}

std::string expand_log_path(std::string_view pattern, const LogPathFacts& f, std::string_view dir) {
  constexpr size_t kMaxWidth = 10;  // as Slurm
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c != '%' || i + 1 == pattern.size()) {
      out.push_back(c);
      continue;
    }
    size_t start = i;
    size_t width = 0;
    size_t k = i + 1;
    while (k < pattern.size() && pattern[k] >= '0' && pattern[k] <= '9') {
      width = std::min(kMaxWidth, width * 10 + static_cast<size_t>(pattern[k] - '0'));
      ++k;
    }
    if (k == pattern.size()) {
      out.append(pattern.substr(start));
      break;
    }
    i = k;
    switch (pattern[k]) {
      case 'A': out += padded(f.array_job_id ? f.array_job_id : f.job_id, width); break;
      case 'a': out += padded(f.array_index >= 0 ? static_cast<uint64_t>(f.array_index) : 4294967294u, width); break;
      case 'j': out += padded(f.job_id, width); break;
      case 'J': out += padded(f.job_id, width) + ".batch"; break;
      case 's': out += "batch"; break;
      case 'x': out += f.job_name; break;
      case 'u': out += f.user; break;
      case 'N': out += f.node; break;
      case 'n':
      case 't': out += padded(f.node_rank, width); break;
      case '%': out.push_back('%'); break;
      default: out.append(pattern.substr(start, k - start + 1));
    }
  }
  if (!out.empty() && out[0] != '/' && !dir.empty()) out = std::string(dir) + "/" + out;
  return out;
}

}  // namespace trainyard::agent
