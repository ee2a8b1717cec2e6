// The order in which pending jobs are offered to placement, as a pluggable
// policy. The core keeps the queue's membership (which jobs wait); a policy
// decides their order and its score. Priority tier then submission order
// is the default; fair share, age and quotas (a later issue) are other
// policies behind the same interface, fed by on_started/on_ended and
// refresh().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string_view>

#include "core/job.h"

namespace trainyard::scheduler {

// A waiting job as the queue holds it: the fields the cycle reads, inline,
// so that passing over a job that cannot start touches no other memory.
struct QueueEntry {
  JobId id = 0;
  int32_t priority = 0;
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

class QueuePolicy {
 public:
  virtual ~QueuePolicy() = default;
  virtual std::string_view name() const = 0;

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

  // Usage hooks for policies that remember who used what (fair share).
  virtual void on_started(const Job& /*job*/, int64_t /*now_ns*/) {}
  virtual void on_ended(const Job& /*job*/, int64_t /*now_ns*/) {}
  // Time passed: re-rank if the policy depends on time (age, usage decay).
  // True when the order may have changed (the next cycle then tries every
  // waiting job, not only the new ones).
  virtual bool refresh(int64_t /*now_ns*/) { return false; }
};

// Priority tier (higher first), then submission order (lower job id first).
class PriorityFifoPolicy final : public QueuePolicy {
 public:
  std::string_view name() const override { return "priority"; }
  void add(const QueueEntry& e) override { queue_.insert(e); }
  void remove(const QueueEntry& e) override { queue_.erase(e); }
  size_t size() const override { return queue_.size(); }
  bool before(const QueueEntry& a, const QueueEntry& b) const override { return Order{}(a, b); }
  void visit(const std::function<Visit(const QueueEntry&)>& fn) override {
    for (auto it = queue_.begin(); it != queue_.end();) {
      Visit v = fn(*it);
      if (v == Visit::kStop) break;
      it = v == Visit::kTake ? queue_.erase(it) : std::next(it);
    }
  }
  double score(const Job& job) const override { return job.spec ? job.spec->priority : 0; }

 private:
  struct Order {
    bool operator()(const QueueEntry& a, const QueueEntry& b) const {
      if (a.priority != b.priority) return a.priority > b.priority;
      return a.id < b.id;
    }
  };
  std::set<QueueEntry, Order> queue_;
};

std::unique_ptr<QueuePolicy> make_policy(std::string_view name);

}  // namespace trainyard::scheduler
