// A job's notifications (sbatch --mail-type / --mail-user, ty submit
// --notify): which of its transitions are told, to whom, and what the
// message says. Pure: the shell's Notifier stores and sends them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "util/status.h"

namespace trainyard::scheduler {

struct Notice {
  JobId job = 0;
  std::string job_text;   // "12", or "10_2" for task 2 of array 10
  std::string name, user, account;
  std::string event;      // "begin", "end", "fail", "requeue", "time_limit": the first the spec asked for
  std::string state;      // Slurm's word: RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, REQUEUED
  int32_t exit_code = 0;
  std::string reason;
  int64_t time_ns = 0;    // when it happened
  uint64_t seconds = 0;   // queued time (begin) or run time (the others)
  std::string subject;    // "Trainyard Job_id=12 Name=train Ended, Run time 00:01:02, COMPLETED, ExitCode 0"
  std::vector<std::string> to;  // the spec's destinations, as given
};

// The notice for job `j`'s change from `from` to `to` (with `reason` and
// `exit_code`), when its spec asks for that kind of event; nullopt otherwise.
std::optional<Notice> notice_for(const Job& j, JobState from, JobState to, const std::string& reason, int32_t exit_code,
                                 int64_t now_ns);

// Checks JobSpec.notify at submit: each entry a mail address, a user name
// (mailed at the site's domain), or an http(s) URL whose host is one of
// `webhook_hosts` (the scheduler posts to nothing else).
Status check_notify(const std::vector<std::string>& notify, const std::vector<std::string>& webhook_hosts);

// The host of an http:// or https:// URL ("" when it is not one).
std::string url_host(const std::string& url);

}  // namespace trainyard::scheduler
