// The gateway's table of every job (core/job_table.h), kept by the bus feed
// from job.submitted and job.state events and read by the cluster overview,
// the experiment list and /metrics, so that none of them asks the scheduler
// for every job record per request. It is seeded from the scheduler once the
// scheduler's stream heartbeats arrive, and seeded again after the feed loses
// events (a seq gap, a stream that starts over, heartbeats ahead of what it
// saw, a job it never heard of) or the bus falls silent and comes back.
// While no scheduler heartbeat arrives the table cannot be trusted, and a
// read asks the scheduler for the list as the gateway always did.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "backends.h"
#include "bus/event.h"
#include "core/job_table.h"

namespace trainyard::gateway {

class JobCache {
 public:
  // A table is trusted while a job stream heartbeat came within `silence_ms`.
  explicit JobCache(Backends& backends, int64_t silence_ms = 5'000);

  // The bus feed thread:
  void on_event(const bus::Event& e);  // job.submitted, job.state
  // A job stream's heartbeat: `seen_seq` is the newest event the feed has of it (0: none).
  void on_heartbeat(std::string_view stream, uint64_t last_seq, uint64_t seen_seq);
  void on_gap();  // a job stream lost events or started over

  // HTTP threads: `read` sees an up-to-date table; the status is the
  // scheduler's error when a seed (or a direct read) was needed and failed.
  Status read(const std::function<void(const JobTable&)>& read);

  std::atomic<uint64_t> seeds{0};         // full job lists asked for
  std::atomic<uint64_t> direct_reads{0};  // reads made without the table (bus silent)

 private:
  bool live(int64_t now_ms) const;
  // Every job the scheduler keeps, following QueryJobs pages (a page stays
  // under the scheduler's byte budget); several pages come back as one list.
  Result<flatbuffers::DetachedBuffer> all_jobs();
  void refresh_starts();

  Backends& backends_;
  const int64_t silence_ms_;
  std::atomic<int64_t> last_heartbeat_ms_{-1'000'000'000};
  std::atomic<bool> needs_seed_{true};
  std::map<std::string, uint64_t, std::less<>> flagged_;  // bus thread only: heartbeat seqs already acted on

  std::mutex seed_mu_;  // one seed (or start refresh) at a time
  std::mutex mu_;       // the table
  JobTable table_;
};

}  // namespace trainyard::gateway
