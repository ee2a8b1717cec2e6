#include "core/quotas.h"

#include <algorithm>
#include <climits>

namespace trainyard::scheduler {

AccountUsage::AccountUsage(std::map<std::string, AccountQuota> quotas, const Cluster& cluster)
    : quotas_(std::move(quotas)), cluster_(cluster) {
  for (auto& q : quotas_) {
    if (!q.second.max_gpus.empty()) any_quota_ = true;
    for (auto& g : q.second.guaranteed_gpus) {
      if (g.second) any_guarantee_ = true;
    }
  }
}

uint32_t AccountUsage::index(std::string_view account) {
  auto [it, fresh] = ids_.emplace(std::string(account), static_cast<uint32_t>(names_.size()));
  if (fresh) {
    names_.emplace_back(account);
    blocked_.push_back(false);
    used_.emplace_back();
    preempted_.push_back(0);
  }
  return it->second;
}

std::optional<uint32_t> AccountUsage::find(std::string_view account) const {
  auto it = ids_.find(std::string(account));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

uint32_t AccountUsage::used(uint32_t account, uint16_t type) const {
  if (account >= used_.size() || type >= used_[account].size()) return 0;
  return used_[account][type];
}

void AccountUsage::hold(uint32_t account, uint16_t type, uint32_t gpus) {
  auto& u = used_[account];
  if (u.size() <= type) u.resize(type + 1, 0);
  u[0] += gpus;
  if (type) u[type] += gpus;
}

void AccountUsage::release(uint32_t account, uint16_t type, uint32_t gpus) {
  auto& u = used_[account];
  if (u.size() <= type) u.resize(type + 1, 0);
  u[0] -= std::min(u[0], gpus);
  if (type) u[type] -= std::min(u[type], gpus);
}

const AccountUsage::Limits& AccountUsage::limits(uint32_t account) const {
  size_t types = cluster_.gpu_type_count();
  if (limits_types_ != types || limits_.size() != names_.size()) {
    limits_.assign(names_.size(), Limits{});
    for (size_t a = 0; a < names_.size(); ++a) {
      auto& l = limits_[a];
      l.max.assign(types, UINT32_MAX);
      l.guaranteed.assign(types, 0);
      auto q = quotas_.find(names_[a]);
      if (q == quotas_.end()) continue;
      for (auto& [t, n] : q->second.max_gpus) {
        if (auto ti = cluster_.gpu_type_index(t)) l.max[*ti] = n;
        l.any = true;
      }
      for (auto& [t, n] : q->second.guaranteed_gpus) {
        if (auto ti = cluster_.gpu_type_index(t)) l.guaranteed[*ti] = n;
        l.any = true;
      }
    }
    limits_types_ = types;
  }
  return limits_[account];
}

bool AccountUsage::over_quota(uint32_t account, uint64_t want, uint16_t type) const {
  const Limits& l = limits(account);
  if (!l.any) return false;
  if (used(account, 0) + want > l.max[0]) return true;
  return type != 0 && used(account, type) + want > l.max[type];
}

bool AccountUsage::borrowing(uint32_t account, uint16_t type) const {
  const Limits& l = limits(account);
  // Above its guarantee of the type, or of all types together.
  if (type != 0 && used(account, type) > l.guaranteed[type]) {
    return l.guaranteed[0] == 0 || used(account, 0) > l.guaranteed[0];
  }
  return type == 0 && used(account, 0) > l.guaranteed[0];
}

bool AccountUsage::within_guarantee(uint32_t account, uint64_t want, uint16_t type) const {
  if (!any_guarantee_) return false;
  const Limits& l = limits(account);
  if (type != 0 && l.guaranteed[type] > 0) return used(account, type) + want <= l.guaranteed[type];
  return l.guaranteed[0] > 0 && used(account, 0) + want <= l.guaranteed[0];
}

bool AccountUsage::under_guarantee(uint32_t account) const {
  const Limits& l = limits(account);
  for (size_t t = 0; t < l.guaranteed.size(); ++t) {
    if (used(account, static_cast<uint16_t>(t)) < l.guaranteed[t]) return true;
  }
  return false;
}

void AccountUsage::queued(uint32_t account) {
  if (queued_.size() <= account) queued_.resize(account + 1, 0);
  ++queued_[account];
}

void AccountUsage::unqueued(uint32_t account) {
  if (account < queued_.size() && queued_[account] > 0) --queued_[account];
}

size_t AccountUsage::reclaimers(std::vector<bool>* out) const {
  size_t waiting = 0;
  out->assign(names_.size(), false);
  for (uint32_t a = 0; a < queued_.size(); ++a) {
    uint32_t n = queued_[a];
    if (n == 0 || !under_guarantee(a)) continue;
    (*out)[a] = true;
    waiting += n;
  }
  return waiting;
}

}  // namespace trainyard::scheduler
