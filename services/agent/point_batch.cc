#include "point_batch.h"

#include <algorithm>

namespace trainyard::agent {

void PointBatch::add(const std::string& name, int64_t step, int64_t time_ns, double value) {
  auto it = index_.find(name);
  uint32_t idx;
  if (it == index_.end()) {
    idx = static_cast<uint32_t>(names_.size());
    names_.push_back(name);
    index_.emplace(name, idx);
  } else {
    idx = it->second;
  }
  points_.emplace_back(step, time_ns, value, idx);
}

void PointBatch::publish(bus::Publisher& pub, storage::Batch& batch, uint64_t job, uint32_t attempt,
                         const std::string& experiment, size_t max) {
  for (size_t from = 0; from < points_.size(); from += max) {
    size_t to = std::min(points_.size(), from + max);
    auto& b = pub.builder();
    // Only the names these points use.
    std::vector<int64_t> remap(names_.size(), -1);
    std::vector<flatbuffers::Offset<flatbuffers::String>> names;
    std::vector<fb::MetricPoint> pts;
    pts.reserve(to - from);
    for (size_t i = from; i < to; ++i) {
      auto& p = points_[i];
      if (remap[p.name()] < 0) {
        remap[p.name()] = static_cast<int64_t>(names.size());
        names.push_back(b.CreateString(names_[p.name()]));
      }
      pts.emplace_back(p.step(), p.time_ns(), p.value(), static_cast<uint32_t>(remap[p.name()]));
    }
    auto n = b.CreateVector(names);
    auto v = b.CreateVectorOfStructs(pts);
    auto e = b.CreateString(experiment);
    auto mb = fb::CreateMetricBatch(b, job, attempt, n, v, e);
    pub.append(batch, "metric.batch", fb::Payload::MetricBatch, mb.Union());
  }
  points_.clear();
  names_.clear();
  index_.clear();
}

}  // namespace trainyard::agent
