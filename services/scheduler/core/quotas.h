// Per-account usage and limits: which accounts the scheduler knows, the GPUs
// each one's active jobs hold (by GPU type), its quota (the most it may hold)
// and guarantee (what it may reclaim by preemption), whether its budget is
// spent (blocked), how many of its jobs wait, and how many were preempted.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/cluster.h"
#include "core/config.h"

namespace trainyard::scheduler {

class AccountUsage {
 public:
  // An account's limits, by GPU type index ([0]: all types together).
  struct Limits {
    std::vector<uint32_t> max;         // UINT32_MAX: none
    std::vector<uint32_t> guaranteed;  // 0: none
    bool any = false;                  // the account has a quota or a guarantee
  };

  // `cluster` names the GPU types (the quotas name them by string) and must
  // outlive this; the quotas' GPU types should already be interned there.
  AccountUsage(std::map<std::string, AccountQuota> quotas, const Cluster& cluster);
  AccountUsage(const AccountUsage&) = delete;
  AccountUsage& operator=(const AccountUsage&) = delete;

  // --- accounts ---
  // The account's index, a new one for an account not seen before.
  uint32_t index(std::string_view account);
  std::optional<uint32_t> find(std::string_view account) const;
  // By index; the address is stable (the policy keeps a pointer to it).
  const std::vector<std::string>& names() const { return names_; }

  // --- budget blocks ---
  bool blocked(uint32_t account) const { return account < blocked_.size() && blocked_[account]; }
  void set_blocked(uint32_t account, bool blocked) { blocked_[account] = blocked; }

  // --- GPUs held ---
  // GPUs the account's active jobs hold of `type` (0: all types).
  uint32_t used(uint32_t account, uint16_t type) const;
  // A job of the account starts (stops) holding `gpus` GPUs of `type`
  // (0: of no particular type).
  void hold(uint32_t account, uint16_t type, uint32_t gpus);
  void release(uint32_t account, uint16_t type, uint32_t gpus);

  // --- quotas and guarantees ---
  bool any_quota() const { return any_quota_; }
  bool any_guarantee() const { return any_guarantee_; }
  // Resolved against the cluster's GPU types as they are now.
  const Limits& limits(uint32_t account) const;
  // Would `want` more GPUs of `type` take the account past its quota (of
  // all types, or of that type)?
  bool over_quota(uint32_t account, uint64_t want, uint16_t type) const;
  // Does the account hold more than its guarantee of `type` (0: of all
  // types)? Its jobs beyond it may be preempted by an account that reclaims.
  bool borrowing(uint32_t account, uint16_t type) const;
  // Would `want` more GPUs of `type` keep the account within its guarantee
  // (of that type when it has one, else of all types)?
  bool within_guarantee(uint32_t account, uint64_t want, uint16_t type) const;
  // Holds less than its guarantee of some type.
  bool under_guarantee(uint32_t account) const;

  // --- waiting jobs and preemptions ---
  void queued(uint32_t account);
  void unqueued(uint32_t account);
  // Accounts under their guarantee that have jobs waiting (`out`, by
  // account index); returns how many jobs wait in them.
  size_t reclaimers(std::vector<bool>* out) const;
  void preempted(uint32_t account) { ++preempted_[account]; }
  uint64_t preemptions(uint32_t account) const { return preempted_[account]; }

 private:
  std::map<std::string, AccountQuota> quotas_;
  const Cluster& cluster_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<bool> blocked_;
  std::vector<std::vector<uint32_t>> used_;  // [account][type]: GPUs held by active jobs ([0]: all)
  std::vector<uint32_t> queued_;             // [account]: jobs waiting
  std::vector<uint64_t> preempted_;          // [account]: runs ended by preemption
  bool any_quota_ = false;
  bool any_guarantee_ = false;
  // Resolved on demand; recomputed when accounts or GPU types were added.
  mutable std::vector<Limits> limits_;
  mutable size_t limits_types_ = 0;
};

}  // namespace trainyard::scheduler
