// Following each run's metrics file: lines become metric.batch points, bad
// lines and points past a cap are counted and warned once in the job's stderr.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "job_files.h"
#include "point_batch.h"
#include "shell.h"
#include "text/utf8.h"

namespace trainyard::agent {
namespace {

// Warning bits past the BadLine kinds: one per cap.
constexpr uint32_t kWarnNameTooLong = 1u << 16;
constexpr uint32_t kWarnTooManySeries = 1u << 17;
constexpr uint32_t kWarnTooFast = 1u << 18;

uint64_t bad_line_count(const RunRecord& r) {
  uint64_t n = 0;
  for (auto c : r.bad_lines) n += c;
  return n;
}

}  // namespace

bool AgentShell::follow_metrics() {
  bool more = false;
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.simulated || r.metrics_done || r.run_dir.empty() || r.state == RunState::kPending) continue;
    more |= follow_one(*run, options_.metrics_read_bytes);
  }
  return more;
}

bool AgentShell::open_metrics(Run& run, bool finished) {
  auto& r = run.rec;
  auto fd = open_job_file(r.metrics_path, O_RDONLY);
  if (fd) {
    run.metrics_fd = *fd;
    return true;
  }
  if (fd.status().code() != ErrorCode::NotFound) refused_job_file(run, fd.status().message());
  if (finished) {
    r.metrics_done = true;
    save(run);
  }
  return false;
}

bool AgentShell::follow_one(Run& run, size_t budget) {
  auto& r = run.rec;
  bool finished = r.finished();
  if (!run.splitter) run.splitter = std::make_unique<LineSplitter>(kMaxMetricLineBytes, r.metrics_offset, r.metrics_skipping);
  if (run.metrics_fd < 0 && !open_metrics(run, finished)) return false;
  // Unchanged file and still running: nothing to do until it grows.
  if (run.metrics_eof && !finished) {
    struct stat st;
    if (::fstat(run.metrics_fd, &st) == 0 && static_cast<uint64_t>(st.st_size) <= run.splitter->next_read()) return false;
  }
  budget = std::min(budget, read_buf_.size());
  ssize_t n = ::pread(run.metrics_fd, read_buf_.data(), budget, static_cast<off_t>(run.splitter->next_read()));
  if (n < 0) n = 0;
  run.metrics_eof = static_cast<size_t>(n) < budget;
  int64_t now = clock_.now_ns();
  PointBatch points;
  uint64_t bad_before = bad_line_count(r);
  auto on_line = [&](std::string_view line, uint64_t offset) {
    MetricLine m = parse_metric_line(line);
    if (m.bad != BadLine::kNone) {
      ++r.bad_lines[static_cast<size_t>(m.bad)];
      warn_bad_line(run, m.bad, offset);
      return;
    }
    // A "time" beyond year 2255 (or before 1970) is a unit mistake: use the read time.
    bool time_ok = m.has_time && m.time_s >= 0 && m.time_s < 9.0e9;
    int64_t t = time_ok ? static_cast<int64_t>(m.time_s * 1e9) : now;
    for (auto& [name, value] : m.values) {
      if (admit_point(run, name, now)) points.add(name, m.step, t, value);
    }
  };
  auto on_too_long = [&](uint64_t offset) {
    ++r.bad_lines[static_cast<size_t>(BadLine::kTooLong)];
    warn_bad_line(run, BadLine::kTooLong, offset);
  };
  uint64_t before = run.splitter->consumed();
  bool was_skipping = run.splitter->skipping();
  if (n > 0) run.splitter->feed(std::string_view(read_buf_.data(), static_cast<size_t>(n)), on_line, on_too_long);
  if (n == 0 && finished) {
    run.splitter->finish(on_line, on_too_long);
    r.metrics_done = true;
    ::close(run.metrics_fd);
    run.metrics_fd = -1;
    spdlog::info("job {} attempt {}: {} metric points, {} bad lines skipped, {} points over a cap dropped", r.job_id,
                 r.attempt, r.points + points.size(), bad_line_count(r), run.dropped_points);
  }
  uint64_t bad_after = bad_line_count(r);
  if (!points.empty()) {
    r.points += points.size();
    points.publish(*publisher_, runtime_.batch(), r.job_id, r.attempt, r.experiment, options_.metrics_batch_points);
  }
  if (run.splitter->consumed() != before || run.splitter->skipping() != was_skipping || r.metrics_done ||
      bad_after != bad_before) {
    r.metrics_offset = run.splitter->consumed();
    r.metrics_skipping = run.splitter->skipping();
    save(run);
  }
  return static_cast<size_t>(n) == budget;
}

void AgentShell::warn_bad_line(Run& run, BadLine kind, uint64_t offset) {
  warn_job_once(run, 1u << static_cast<uint32_t>(kind),
                "trainyard: skipped a line of the metrics file " + run.rec.metrics_path + " at byte " +
                    std::to_string(offset) + ": " + describe(kind) +
                    " (expected {\"step\": N, \"name\": number, ...}); further lines like it are skipped and "
                    "counted without a warning\n");
}

bool AgentShell::admit_point(Run& run, std::string& name, int64_t now_ns) {
  const auto& o = options_;
  auto drop = [&](uint32_t bit, const std::string& why) {
    ++run.dropped_points;
    warn_job_once(run, bit, "trainyard: dropped metric points: " + why + "; further points like them are dropped "
                            "and counted without a warning\n");
    return false;
  };
  if (name.size() > o.max_metric_name_bytes)
    return drop(kWarnNameTooLong, "a metric name is longer than " + std::to_string(o.max_metric_name_bytes) +
                                      " bytes (agent.max_metric_name_bytes)");
  if (!text::valid_utf8(name)) name = text::replace_invalid_utf8(name);  // kept, readable everywhere
  if (!run.series.contains(name)) {
    if (run.series.size() >= o.max_series_per_run)
      return drop(kWarnTooManySeries, "the job reports more than " + std::to_string(o.max_series_per_run) +
                                          " distinct metrics (agent.max_series_per_run)");
    run.series.insert(name);
  }
  // Token bucket: max_points_per_s sustained, a minute's worth of burst (a
  // job catching up its log at start is not a flood).
  double burst = 60.0 * o.max_points_per_s;
  if (run.point_tokens < 0) run.point_tokens = burst;
  if (run.tokens_at_ns > 0 && now_ns > run.tokens_at_ns)
    run.point_tokens = std::min(burst, run.point_tokens + (now_ns - run.tokens_at_ns) * 1e-9 * o.max_points_per_s);
  run.tokens_at_ns = now_ns;
  if (run.point_tokens < 1)
    return drop(kWarnTooFast, "the job reports more than " + std::to_string(o.max_points_per_s) +
                                  " points per second (agent.max_points_per_s)");
  run.point_tokens -= 1;
  return true;
}

void AgentShell::warn_job_once(Run& run, uint32_t bit, const std::string& msg) {
  auto& r = run.rec;
  if (r.warned_kinds & bit) return;
  r.warned_kinds |= bit;
  auto fd = open_job_file(r.stderr_path, O_WRONLY | O_APPEND | O_CREAT);
  if (!fd) {
    refused_job_file(run, fd.status().message());
    return;
  }
  (void)!::write(*fd, msg.data(), msg.size());
  ::close(*fd);
}

}  // namespace trainyard::agent
