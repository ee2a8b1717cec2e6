// Cloud node metering: a rented node costs its pool's configured price per
// node-hour from the launch request to the confirmed release (the broker's
// cloud lease, cloud.<pool>.<state>). Job time on it is charged to the job's
// account at the node's price per GPU; what the jobs did not use (boot,
// idle, draining: the overhead) goes, when the lease ends, to the account
// whose job triggered the launch or to a platform account. The job lines
// and the overhead line of a lease add up to floor(node time x price)
// exactly. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace trainyard::billing {

// What billing keeps of one cloud lease.
struct CloudNode {
  uint64_t lease = 0;
  std::string pool;
  std::string node;
  std::string account;  // the triggering job's ("" : none)
  int64_t price_micros_per_hour = 0;
  uint32_t gpus = 1;
  int64_t requested_ns = 0;
  int64_t ended_ns = 0;  // 0: live
  int64_t job_micros = 0;       // charged to jobs so far
  bool overhead_charged = false;

  std::string encode() const;
  static std::optional<CloudNode> decode(std::string_view bytes);
};

enum class OverheadRule { kTrigger, kPlatform };

// One charge the meter asks for (the shell writes it to the ledger).
struct CloudCharge {
  std::string account;
  std::string user;
  uint64_t job = 0;
  std::string line_type;  // "cloud:<pool>" for job time, "cloud:<pool>:overhead"
  int64_t at_ns = 0;      // the day it is booked on
  uint64_t gpu_ns = 0;    // quantity (GPU-ns; node-ns x GPUs for overhead)
  int64_t micros = 0;
  uint64_t lease = 0;     // the cloud lease charged
};

// floor(ns x price_per_hour / 1 h), in micro-units; u128 inside, so no overflow.
int64_t node_cost_micros(int64_t ns, int64_t price_micros_per_hour);

class CloudMeter {
 public:
  CloudMeter(OverheadRule rule, std::string platform_account)
      : rule_(rule), platform_(std::move(platform_account)) {}

  void restore(CloudNode n) {
    note_node(n.node, n.lease);
    leases_[n.lease] = std::move(n);
  }
  // A cloud lease event. Returns the overhead charge once the lease has ended
  // (once: a replayed event charges nothing more).
  std::optional<CloudCharge> lease_changed(const CloudNode& update, bool ended);
  // A usage tick: the charge for the job when `node` is a cloud node, else nullopt.
  std::optional<CloudCharge> usage(std::string_view node, std::string_view account, std::string_view user,
                                   uint64_t job, uint32_t gpus, int64_t start_ns, int64_t end_ns);
  bool is_cloud_node(std::string_view node) const { return by_node_.count(std::string(node)) > 0; }
  const CloudNode* lease(uint64_t id) const;
  // The newest lease of `node` (a pool's node names are slots, reused by
  // later leases once the earlier instance is gone).
  const CloudNode* by_node(std::string_view node) const;
  const std::string& platform_account() const { return platform_; }

 private:
  void note_node(const std::string& node, uint64_t lease);
  // The lease `node` ran under at `at_ns` (the newest requested by then).
  CloudNode* lease_at(std::string_view node, int64_t at_ns);
  OverheadRule rule_;
  std::string platform_;
  std::map<uint64_t, CloudNode> leases_;
  std::map<std::string, uint64_t> by_node_;
};

}  // namespace trainyard::billing
