// A metric.batch under construction: the names table and its points. The
// metrics follower and the resource sampler both publish through it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/publisher.h"
#include "storage/store.h"

namespace trainyard::agent {

class PointBatch {
 public:
  void add(const std::string& name, int64_t step, int64_t time_ns, double value);
  size_t size() const { return points_.size(); }
  bool empty() const { return points_.empty(); }
  // Appends the points as metric.batch events of at most `max` points each.
  void publish(bus::Publisher& pub, storage::Batch& batch, uint64_t job, uint32_t attempt,
               const std::string& experiment, size_t max);

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<fb::MetricPoint> points_;
};

}  // namespace trainyard::agent
