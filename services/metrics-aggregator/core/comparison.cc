#include "core/comparison.h"

#include <algorithm>

namespace trainyard::metrics {

namespace {

void put_str(std::string& out, std::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  out.append(s);
}

bool get_str(std::string_view& in, std::string* out) {
  if (in.size() < 4) return false;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(in[i]);
  if (in.size() < 4 + static_cast<size_t>(n)) return false;
  out->assign(in.substr(4, n));
  in.remove_prefix(4 + n);
  return true;
}

}  // namespace

std::string encode_run_info(const RunInfo& r) {
  std::string out;
  put_str(out, r.name);
  put_str(out, r.experiment);
  put_str(out, std::to_string(r.labels.size()));
  for (auto& [k, v] : r.labels) {
    put_str(out, k);
    put_str(out, v);
  }
  put_str(out, r.user);
  put_str(out, r.account);
  return out;
}

std::optional<RunInfo> decode_run_info(std::string_view s) {
  RunInfo r;
  std::string n;
  if (!get_str(s, &r.name) || !get_str(s, &r.experiment) || !get_str(s, &n)) return std::nullopt;
  size_t count = 0;
  try {
    count = std::stoul(n);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  for (size_t i = 0; i < count; ++i) {
    std::string k, v;
    if (!get_str(s, &k) || !get_str(s, &v)) return std::nullopt;
    r.labels.emplace_back(std::move(k), std::move(v));
  }
  // Owner and account came later: records written before them end here.
  if (!s.empty() && (!get_str(s, &r.user) || !get_str(s, &r.account))) return std::nullopt;
  return r;
}

RunResult run_result(uint64_t job_id, const Summary& s, bool maximize, const RunInfo* info) {
  RunResult r;
  r.job_id = job_id;
  r.final_value = s.all.last.value;
  r.final_step = s.all.last.step;
  const Point& best = maximize ? s.all.max : s.all.min;
  r.best_value = best.value;
  r.best_step = best.step;
  if (info) {
    r.name = info->name;
    r.labels = info->labels;
  }
  return r;
}

void rank_runs(std::vector<RunResult>& rows, bool maximize) {
  std::sort(rows.begin(), rows.end(), [maximize](const RunResult& a, const RunResult& b) {
    if (a.best_value != b.best_value) return maximize ? a.best_value > b.best_value : a.best_value < b.best_value;
    if (a.best_step != b.best_step) return a.best_step < b.best_step;
    return a.job_id < b.job_id;
  });
}

}  // namespace trainyard::metrics
