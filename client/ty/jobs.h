// What ty's job commands share: reading JOB arguments (jobs.cc), showing
// and waiting for jobs (job_view.cc). jobs.cc has ty submit; job_commands.cc
// registers queue, status, cancel, hold, release, logs and wait. Private to
// client/ty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "commands.h"

namespace trainyard::ty::jobs {

// A job a JOB argument named, and whether it came from naming a whole array.
struct Named {
  fb::JobRecordT job;
  bool whole_array = false;
};

// Parses JOB arguments (N, an array id for all its tasks, or ARRAY_INDEX)
// without asking anyone; prints and returns false on a bad one.
bool parse_job_refs(const std::vector<std::string>& texts, std::vector<client::JobRef>* refs);
// The jobs that JOB arguments name, in order.
Result<std::vector<Named>> jobs_named(client::Client& c, const std::vector<client::JobRef>& refs);

// "8xA100": the GPUs of a spec, all nodes together.
std::string gpus_of(const fb::JobSpecT* spec);
std::string join(const std::vector<std::string>& parts, const std::string& sep);
// How long a job ran (or has been running).
std::string elapsed_of(const fb::JobRecordT& j);
// Waits for `ids`, reports failures; 0 only when every job succeeded.
int wait_for(client::Client& c, const std::vector<uint64_t>& ids, int64_t timeout_s, bool json);
// `ty status JOB`: one job in full, or an array's tasks one a line.
void print_status(const fb::JobRecordT& j);
void print_array_status(uint64_t array, const std::vector<fb::JobRecordT>& tasks);

}  // namespace trainyard::ty::jobs
