#include "sim/trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace trainyard::scheduler::sim {
namespace {

std::string trim(std::string s) {
  auto ws = [](unsigned char c) { return std::isspace(c) != 0; };
  s.erase(s.begin(), std::find_if_not(s.begin(), s.end(), ws));
  s.erase(std::find_if_not(s.rbegin(), s.rend(), ws).base(), s.end());
  return s;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(line);
  while (std::getline(in, cur, sep)) out.push_back(trim(cur));
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

bool to_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

bool to_uint(const std::string& s, uint32_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

Result<std::vector<TraceJob>> parse_trace(std::istream& in, const std::string& source) {
  std::vector<TraceJob> jobs;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto cols = split(t, ',');
    auto where = [&](const char* column) { return source + ":" + std::to_string(line_no) + ": " + column + ": "; };
    if (cols.size() < 5 || cols.size() > 6) {
      return Status::invalid(source + ":" + std::to_string(line_no) +
                             ": expected job_id,submit_time_s,num_gpus,duration_s,user,gpu_type (" +
                             std::to_string(cols.size()) + " columns found)");
    }
    if (jobs.empty() && cols[1] == "submit_time_s") continue;  // the header
    TraceJob j;
    j.id = cols[0];
    if (j.id.empty()) return Status::invalid(where("job_id") + "empty");
    if (!to_double(cols[1], &j.submit_s) || j.submit_s < 0) {
      return Status::invalid(where("submit_time_s") + "'" + cols[1] + "' is not a time in seconds (0 or more)");
    }
    if (!to_uint(cols[2], &j.gpus)) return Status::invalid(where("num_gpus") + "'" + cols[2] + "' is not a GPU count");
    if (!to_double(cols[3], &j.duration_s) || j.duration_s <= 0) {
      return Status::invalid(where("duration_s") + "'" + cols[3] + "' is not a duration in seconds (more than 0)");
    }
    j.user = cols[4];
    if (j.user.empty()) return Status::invalid(where("user") + "empty");
    j.gpu_type = cols.size() > 5 ? cols[5] : std::string();
    if (j.gpu_type == "any" || j.gpu_type == "*") j.gpu_type.clear();
    jobs.push_back(std::move(j));
  }
  std::stable_sort(jobs.begin(), jobs.end(), [](const TraceJob& a, const TraceJob& b) { return a.submit_s < b.submit_s; });
  return jobs;
}

Result<std::vector<TraceJob>> read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("trace: cannot open '" + path + "'");
  return parse_trace(in, path);
}

Result<std::vector<NodeGroup>> parse_nodes(const std::string& text) {
  std::vector<NodeGroup> out;
  for (auto& part : split(text, ',')) {
    if (part.empty()) continue;
    NodeGroup g;
    std::string shape = part;
    if (auto colon = part.find(':'); colon != std::string::npos) {
      shape = part.substr(0, colon);
      g.type = part.substr(colon + 1);
    }
    auto x = shape.find('x');
    if (x == std::string::npos || !to_uint(shape.substr(0, x), &g.count) || !to_uint(shape.substr(x + 1), &g.gpus) ||
        g.count == 0 || g.gpus == 0 || g.gpus > 64) {
      return Status::invalid("--nodes: '" + part + "' is not COUNTxGPUS[:TYPE] (e.g. 64x8:V100; at most 64 GPUs a node)");
    }
    out.push_back(std::move(g));
  }
  if (out.empty()) return Status::invalid("--nodes: no nodes given (e.g. 64x8:V100,32x8:A100)");
  return out;
}

}  // namespace trainyard::scheduler::sim
