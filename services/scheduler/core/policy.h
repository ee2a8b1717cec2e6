// The order in which pending jobs are offered to placement, as a pluggable
// policy. The core keeps the queue's membership (which jobs wait); a policy
// decides their order and their priority score. Three policies: `fifo`
// (submission order), `priority` (tier, then submission order) and
// `fairshare` (tier, then Slurm-style multifactor priority: fair share with
// decayed usage and dominant-resource shares across GPU types, plus age).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/job.h"

namespace trainyard::scheduler {

// A waiting job as the queue holds it: the fields the cycle reads, inline,
// so that passing over a job that cannot start touches no other memory.
struct QueueEntry {
  JobId id = 0;
  int64_t tier = 0;       // higher first
  int64_t submit_ns = 0;
  uint32_t account = 0;
  JobId array_job_id = 0;
  Shape shape;
  Job* job = nullptr;
};

// What the cycle does with the entry it was shown.
enum class Visit {
  kNext,  // leave it waiting, show the next one
  kTake,  // it starts: remove it from the queue, show the next one
  kStop,  // nothing more can start in this cycle
};

// A pending job's priority as users see it (`ty queue`).
struct PriorityFactors {
  int64_t tier = 0;
  double fairshare = 1;  // 0..1
  double age = 0;        // 0..1
  double priority = 0;   // the score the order uses within a tier
};

// What the scheduler shares with its policy; the pointers stay valid for
// the scheduler's life.
struct PolicyContext {
  const std::vector<std::string>* account_names = nullptr;  // by account index
  const std::vector<uint64_t>* gpu_capacity = nullptr;       // schedulable GPUs by type index ([0]: all)
};

class QueuePolicy {
 public:
  virtual ~QueuePolicy() = default;
  virtual std::string_view name() const = 0;
  virtual void attach(const PolicyContext& /*ctx*/) {}

  // Membership: the core adds a job when it becomes eligible to start and
  // removes it when it starts, is held, cancelled or waits on something.
  virtual void add(const QueueEntry& e) = 0;
  virtual void remove(const QueueEntry& e) = 0;
  virtual size_t size() const = 0;

  // Strict order: true when `a` is tried before `b`.
  virtual bool before(const QueueEntry& a, const QueueEntry& b) const = 0;
  // Shows the waiting jobs in order until fn says kStop, removing those it
  // takes. fn must not add or remove entries itself.
  virtual void visit(const std::function<Visit(const QueueEntry&)>& fn) = 0;
  // The job's priority as shown to users (JobRecord.priority_score).
  virtual double score(const Job& job) const = 0;
  virtual PriorityFactors factors(const Job& job) const {
    PriorityFactors f;
    f.tier = job.tier;
    f.priority = score(job);
    return f;
  }
  // Whether the order ranks by tier first (then the cycle may stop early
  // once the remaining jobs cannot preempt anything).
  virtual bool tier_first() const { return true; }

  // Usage hooks: a run of `job` (job.held_type, job.held_gpus) started or
  // ended. Policies that remember who used what (fair share) accrue it.
  virtual void on_started(const Job& /*job*/, int64_t /*now_ns*/) {}
  virtual void on_ended(const Job& /*job*/, int64_t /*now_ns*/) {}
  // Time passed: re-rank if the policy depends on time (age, usage decay).
  // True when the order may have changed (the next cycle then tries every
  // waiting job, not only the new ones).
  virtual bool refresh(int64_t /*now_ns*/) { return false; }
  // Restore: usage of runs no job record holds any more (purged jobs),
  // `gpu_s` as it stood at `at_ns`.
  virtual void add_usage(uint32_t /*account*/, uint16_t /*type*/, double /*gpu_s*/, int64_t /*at_ns*/) {}
};

// Submission order only (lower job id first); tiers are ignored.
class FifoPolicy final : public QueuePolicy {
 public:
  std::string_view name() const override { return "fifo"; }
  void add(const QueueEntry& e) override { queue_.insert(e); }
  void remove(const QueueEntry& e) override { queue_.erase(e); }
  size_t size() const override { return queue_.size(); }
  bool before(const QueueEntry& a, const QueueEntry& b) const override { return a.id < b.id; }
  void visit(const std::function<Visit(const QueueEntry&)>& fn) override;
  double score(const Job&) const override { return 0; }
  bool tier_first() const override { return false; }

 private:
  struct Order {
    bool operator()(const QueueEntry& a, const QueueEntry& b) const { return a.id < b.id; }
  };
  std::set<QueueEntry, Order> queue_;
};

// Tier (higher first), then submission order (lower job id first).
class PriorityFifoPolicy final : public QueuePolicy {
 public:
  std::string_view name() const override { return "priority"; }
  void add(const QueueEntry& e) override { queue_.insert(e); }
  void remove(const QueueEntry& e) override { queue_.erase(e); }
  size_t size() const override { return queue_.size(); }
  bool before(const QueueEntry& a, const QueueEntry& b) const override { return Order{}(a, b); }
  void visit(const std::function<Visit(const QueueEntry&)>& fn) override;
  double score(const Job& job) const override { return job.spec ? job.spec->priority : 0; }

  struct Order {
    bool operator()(const QueueEntry& a, const QueueEntry& b) const {
      if (a.tier != b.tier) return a.tier > b.tier;
      return a.id < b.id;
    }
  };

 private:
  std::set<QueueEntry, Order> queue_;
};

// Tier, then multifactor priority (fair share + age), then submission.
// Each account's waiting jobs are kept in (tier, submission) order, which
// is their multifactor order too (one fair-share factor per account, age
// falls with submission time); the cycle merges the accounts' queues, so a
// change of the factors costs no re-sort of the waiting jobs.
class FairSharePolicy final : public QueuePolicy {
 public:
  explicit FairSharePolicy(FairShareConfig config);
  std::string_view name() const override { return "fairshare"; }
  void attach(const PolicyContext& ctx) override { ctx_ = ctx; }
  void add(const QueueEntry& e) override;
  void remove(const QueueEntry& e) override;
  size_t size() const override { return size_; }
  bool before(const QueueEntry& a, const QueueEntry& b) const override;
  void visit(const std::function<Visit(const QueueEntry&)>& fn) override;
  double score(const Job& job) const override { return factors(job).priority; }
  PriorityFactors factors(const Job& job) const override;
  void on_started(const Job& job, int64_t now_ns) override;
  void on_ended(const Job& job, int64_t now_ns) override;
  bool refresh(int64_t now_ns) override;
  void add_usage(uint32_t account, uint16_t type, double gpu_s, int64_t at_ns) override;

  // The account's fair-share factor as of the last refresh (1 when unknown).
  double fairshare_factor(uint32_t account) const;
  // The account's decayed usage in GPU-seconds of type `type` (0: all types
  // together is not kept; type 0 is usage of jobs whose type is unknown).
  double usage(uint32_t account, uint16_t type) const;

 private:
  struct Account {
    std::set<QueueEntry, PriorityFifoPolicy::Order> queue;
    std::vector<double> usage;  // decayed GPU-seconds by type index
    std::vector<double> rate;   // GPUs running by type index
    double factor = 1;
  };
  Account& account(uint32_t a);
  void accrue(int64_t now_ns);
  void recompute();
  double priority(const QueueEntry& e) const;
  double age(int64_t submit_ns) const;

  FairShareConfig config_;
  PolicyContext ctx_;
  std::vector<Account> accounts_;
  size_t size_ = 0;
  int64_t now_ns_ = 0;  // time of the last refresh (ages are taken at it)
  int64_t accrued_ns_ = 0;
  double lambda_ = 0;   // decay rate per second
};

// "fifo", "priority", "fairshare" (also "fairshare+backfill"); nullptr for
// an unknown name.
std::unique_ptr<QueuePolicy> make_policy(std::string_view name, const FairShareConfig& fairshare = {});
// The backfill mode a policy name implies when none is configured: "fifo"
// is strict, "+backfill" is EASY, the others pass over jobs that wait.
Backfill backfill_for(std::string_view policy_name);

}  // namespace trainyard::scheduler
