// What the gateway needs to know of every job for its summaries (the
// cluster overview, the /metrics job gauges and queue waits, the experiment
// list): a few fields per job, kept up to date from job.submitted and
// job.state events and seeded from the scheduler's job list, so that those
// pages do not ask the scheduler for every job record on every request.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cluster.h"
#include "trainyard/fb/bus_generated.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::gateway {

struct JobRow {
  fb::JobState state = fb::JobState::Pending;
  std::string partition;
  std::string experiment;
  std::string user;
  int64_t submit_ns = 0;
  int64_t start_ns = 0;        // 0 until it runs (and again when requeued)
  bool start_exact = true;     // false: the event's time stands in until the record is read
  int64_t updated_ns = 0;      // time of the newest change applied
  uint64_t generation = 0;     // the table's generation when an event last changed it
};

class JobTable {
 public:
  void submitted(const fb::JobSubmitted& e, int64_t time_ns);
  // Returns false when the job is unknown here (its job.submitted was missed):
  // the table then needs a new seed.
  bool state_changed(const fb::JobStateChanged& e, int64_t time_ns);
  // Call before asking the scheduler for its list; pass what it returns to
  // seed(). The list then replaces the table, except for rows that events
  // changed while the list was on its way (those are newer than it).
  uint64_t begin_seed() { return ++generation_; }
  void seed(const fb::JobList& list, uint64_t since_generation = UINT64_MAX);
  // The start time from a job's record (GetJob).
  void set_start(uint64_t job_id, int64_t start_ns);
  // Running jobs whose start time is the event's stand-in, at most `max`.
  std::vector<uint64_t> inexact_starts(size_t max) const;

  size_t size() const { return rows_.size(); }
  const JobRow* find(uint64_t job_id) const;

  // The same figures job_stats() computes from a full job list.
  JobStats stats() const;
  // GET /api/v1/experiments: one entry per experiment, newest submit first.
  nlohmann::json experiments() const;

 private:
  std::unordered_map<uint64_t, JobRow> rows_;
  uint64_t generation_ = 0;
};

JobRow row_of(const fb::JobRecord& j);

}  // namespace trainyard::gateway
