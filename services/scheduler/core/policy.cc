#include "core/policy.h"

#include <algorithm>
#include <cmath>

namespace trainyard::scheduler {
namespace {

template <typename Set>
void visit_set(Set& queue, const std::function<Visit(const QueueEntry&)>& fn) {
  for (auto it = queue.begin(); it != queue.end();) {
    Visit v = fn(*it);
    if (v == Visit::kStop) break;
    it = v == Visit::kTake ? queue.erase(it) : std::next(it);
  }
}

}  // namespace

void FifoPolicy::visit(const std::function<Visit(const QueueEntry&)>& fn) { visit_set(queue_, fn); }
void PriorityFifoPolicy::visit(const std::function<Visit(const QueueEntry&)>& fn) { visit_set(queue_, fn); }

// --- fair share ----------------------------------------------------------------

FairSharePolicy::FairSharePolicy(FairShareConfig config) : config_(std::move(config)) {
  lambda_ = config_.half_life_s > 0 ? std::log(2.0) / config_.half_life_s : 0;
}

FairSharePolicy::Account& FairSharePolicy::account(uint32_t a) {
  if (accounts_.size() <= a) accounts_.resize(a + 1);
  return accounts_[a];
}

void FairSharePolicy::add(const QueueEntry& e) {
  if (account(e.account).queue.insert(e).second) ++size_;
}

void FairSharePolicy::remove(const QueueEntry& e) {
  if (e.account < accounts_.size() && accounts_[e.account].queue.erase(e)) --size_;
}

double FairSharePolicy::age(int64_t submit_ns) const {
  if (config_.max_age_s <= 0) return 0;
  double waited = static_cast<double>(now_ns_ - submit_ns) / 1e9;
  return std::clamp(waited / config_.max_age_s, 0.0, 1.0);
}

double FairSharePolicy::fairshare_factor(uint32_t a) const { return a < accounts_.size() ? accounts_[a].factor : 1.0; }

double FairSharePolicy::usage(uint32_t a, uint16_t type) const {
  if (a >= accounts_.size() || type >= accounts_[a].usage.size()) return 0;
  return accounts_[a].usage[type];
}

double FairSharePolicy::priority(const QueueEntry& e) const {
  return config_.weight_fairshare * fairshare_factor(e.account) + config_.weight_age * age(e.submit_ns);
}

bool FairSharePolicy::before(const QueueEntry& a, const QueueEntry& b) const {
  if (a.tier != b.tier) return a.tier > b.tier;
  double pa = priority(a), pb = priority(b);
  if (pa != pb) return pa > pb;
  return a.id < b.id;
}

PriorityFactors FairSharePolicy::factors(const Job& job) const {
  PriorityFactors f;
  f.tier = job.tier;
  f.fairshare = fairshare_factor(job.account);
  f.age = age(job.submit_time_ns);
  f.priority = config_.weight_fairshare * f.fairshare + config_.weight_age * f.age;
  return f;
}

void FairSharePolicy::visit(const std::function<Visit(const QueueEntry&)>& fn) {
  // A k-way merge of the accounts' queues, each already in policy order.
  using It = std::set<QueueEntry, PriorityFifoPolicy::Order>::iterator;
  struct Head {
    It it;
    uint32_t account;
  };
  std::vector<Head> heap;
  heap.reserve(accounts_.size());
  for (uint32_t a = 0; a < accounts_.size(); ++a) {
    if (!accounts_[a].queue.empty()) heap.push_back(Head{accounts_[a].queue.begin(), a});
  }
  auto after = [&](const Head& x, const Head& y) { return before(*y.it, *x.it); };
  std::make_heap(heap.begin(), heap.end(), after);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), after);
    Head h = heap.back();
    heap.pop_back();
    auto& q = accounts_[h.account].queue;
    Visit v = fn(*h.it);
    if (v == Visit::kStop) return;
    if (v == Visit::kTake) {
      h.it = q.erase(h.it);
      --size_;
    } else {
      ++h.it;
    }
    if (h.it != q.end()) {
      heap.push_back(h);
      std::push_heap(heap.begin(), heap.end(), after);
    }
  }
}

void FairSharePolicy::accrue(int64_t now_ns) {
  if (accrued_ns_ == 0) accrued_ns_ = now_ns;
  if (now_ns <= accrued_ns_) return;
  double dt = static_cast<double>(now_ns - accrued_ns_) / 1e9;
  accrued_ns_ = now_ns;
  // Exact for a constant rate over dt: u' = u e^{-λdt} + r (1 - e^{-λdt}) / λ.
  double keep = lambda_ > 0 ? std::exp(-lambda_ * dt) : 1.0;
  double gain = lambda_ > 0 ? (1 - keep) / lambda_ : dt;
  for (auto& acc : accounts_) {
    for (size_t t = 0; t < acc.usage.size(); ++t) {
      double r = t < acc.rate.size() ? acc.rate[t] : 0;
      acc.usage[t] = acc.usage[t] * keep + r * gain;
    }
  }
}

void FairSharePolicy::on_started(const Job& job, int64_t now_ns) {
  accrue(now_ns);
  auto& acc = account(job.account);
  size_t t = job.held_type;
  if (acc.rate.size() <= t) acc.rate.resize(t + 1, 0);
  if (acc.usage.size() <= t) acc.usage.resize(t + 1, 0);
  acc.rate[t] += job.held_gpus;
}

void FairSharePolicy::on_ended(const Job& job, int64_t now_ns) {
  accrue(now_ns);
  auto& acc = account(job.account);
  size_t t = job.held_type;
  if (t < acc.rate.size()) acc.rate[t] = std::max(0.0, acc.rate[t] - job.held_gpus);
}

void FairSharePolicy::add_usage(uint32_t a, uint16_t type, double gpu_s, int64_t at_ns) {
  accrue(at_ns);
  auto& acc = account(a);
  if (acc.usage.size() <= type) acc.usage.resize(type + 1, 0);
  // Accrual may already be past at_ns: decay what is added by the difference.
  double since_s = accrued_ns_ > at_ns ? static_cast<double>(accrued_ns_ - at_ns) / 1e9 : 0;
  acc.usage[type] += lambda_ > 0 ? gpu_s * std::exp(-lambda_ * since_s) : gpu_s;
}

void FairSharePolicy::recompute() {
  // Dominant share: the largest fraction of any one GPU type's capacity
  // the account's decayed usage amounts to (usage of unknown type counts
  // against every GPU together).
  std::vector<double> dominant(accounts_.size(), 0);
  double total_dominant = 0;
  const std::vector<uint64_t>* cap = ctx_.gpu_capacity;
  for (size_t a = 0; a < accounts_.size(); ++a) {
    double d = 0;
    for (size_t t = 0; t < accounts_[a].usage.size(); ++t) {
      double c = cap && t < cap->size() && (*cap)[t] > 0 ? static_cast<double>((*cap)[t])
                 : cap && !cap->empty() && (*cap)[0] > 0 ? static_cast<double>((*cap)[0])
                                                          : 1.0;
      d = std::max(d, accounts_[a].usage[t] / c);
    }
    dominant[a] = d;
    total_dominant += d;
  }
  // Shares are normalised over the accounts that have work or usage.
  auto share_of = [&](size_t a) {
    if (!ctx_.account_names || a >= ctx_.account_names->size()) return 1.0;
    auto it = config_.shares.find((*ctx_.account_names)[a]);
    return it == config_.shares.end() ? 1.0 : std::max(0.0, it->second);
  };
  double total_share = 0;
  for (size_t a = 0; a < accounts_.size(); ++a) {
    auto& acc = accounts_[a];
    bool active = !acc.queue.empty() || dominant[a] > 0;
    for (double r : acc.rate) active = active || r > 0;
    if (active) total_share += share_of(a);
  }
  for (size_t a = 0; a < accounts_.size(); ++a) {
    double s = total_share > 0 ? share_of(a) / total_share : 0;
    double u = total_dominant > 0 ? dominant[a] / total_dominant : 0;
    if (u <= 0) {
      accounts_[a].factor = 1;
    } else if (s <= 0) {
      accounts_[a].factor = 0;
    } else {
      accounts_[a].factor = std::exp2(-u / s);
    }
  }
}

bool FairSharePolicy::refresh(int64_t now_ns) {
  if (now_ns <= now_ns_ && now_ns_ != 0) return false;
  accrue(now_ns);
  now_ns_ = now_ns;
  recompute();
  return true;
}

// --- factory -----------------------------------------------------------------

std::unique_ptr<QueuePolicy> make_policy(std::string_view name, const FairShareConfig& fairshare) {
  if (name.empty() || name == "priority") return std::make_unique<PriorityFifoPolicy>();
  if (name == "fifo") return std::make_unique<FifoPolicy>();
  if (name == "fairshare" || name == "fairshare+backfill") return std::make_unique<FairSharePolicy>(fairshare);
  return nullptr;
}

Backfill backfill_for(std::string_view policy_name) {
  if (policy_name == "fifo") return Backfill::kOff;
  if (policy_name.size() >= 9 && policy_name.substr(policy_name.size() - 9) == "+backfill") return Backfill::kEasy;
  return Backfill::kGreedy;
}

}  // namespace trainyard::scheduler
