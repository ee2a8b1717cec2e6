// Checks a submitted job spec against the configuration and the nodes the
// scheduler knows, and fills in what the scheduler decides for the job
// (partition, time limit, CPUs). Every error names the field at fault and
// says what to do.
#pragma once

#include "core/cluster.h"
#include "core/config.h"
#include "core/job.h"
#include "util/status.h"

namespace trainyard::scheduler {

// Validates `spec` and normalises it in place.
Status normalize_spec(fb::JobSpecT& spec, const SchedulerConfig& config, const Cluster& cluster);

// The placement shape of a normalised spec, in its first partition
// (partition 0xffff when the partition no longer exists: such a job never
// fits).
Shape shape_of(const fb::JobSpecT& spec, Cluster& cluster);

// "a,b" as its names; a single name as itself.
std::vector<std::string> partition_names(const std::string& list);
// Every partition of a list ("-p a,b": a and b), where the job may start;
// empty for a single partition.
std::vector<uint16_t> other_partitions(const fb::JobSpecT& spec, const Cluster& cluster);

}  // namespace trainyard::scheduler
