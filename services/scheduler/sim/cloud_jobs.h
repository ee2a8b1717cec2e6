// What the simulated broker reads from the scheduler core: its waiting
// jobs, as the real broker reads them with QueryJobs (cloud_shell.cc).
#pragma once

#include <vector>

#include "core/scheduler.h"
#include "sim/cloud.h"

namespace trainyard::scheduler::sim {

// Pending jobs from *first_live on; *first_live moves past the jobs that
// ended, so later calls skip them.
std::vector<CloudWaiting> waiting_for_cloud(const Scheduler& core, JobId* first_live);

// The scheduler's view of a rented node that registered.
fb::NodeInfoT cloud_node_info(const CloudNodeShape& shape);

}  // namespace trainyard::scheduler::sim
