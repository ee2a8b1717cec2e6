// /metrics in the Prometheus text exposition format (version 0.0.4): a small
// writer that keeps every family's HELP/TYPE before its samples and escapes
// label values, and the gateway's figures rendered with it. A family whose
// source service did not answer is left out (trainyard_service_up says so),
// so a scrape never reports a stale or made-up number.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/cluster.h"

namespace trainyard::gateway {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PromWriter {
 public:
  // Starts a family; `type` is gauge, counter or histogram.
  void family(const std::string& name, const std::string& type, const std::string& help);
  // One sample of the current family; `suffix` is "", "_bucket", "_sum" or "_count".
  void sample(const Labels& labels, double value, const std::string& suffix = "");
  // A whole histogram sample set from raw observations.
  void histogram(const Labels& labels, const std::vector<double>& bounds, const std::vector<double>& observations);
  const std::string& text() const { return out_; }

  // Makes any string a valid metric or label name ("sys/gpu util" -> "sys_gpu_util").
  static std::string sanitize_name(const std::string& s);
  static std::string escape_label(const std::string& s);
  static std::string format_value(double v);

 private:
  std::string out_;
  std::string current_;
};

// A service's own health figures from its ops.metrics.<service> event.
struct OpsReport {
  std::string service;
  std::string instance;
  std::vector<std::pair<std::string, double>> gauges;
};

struct AccountSpend {
  std::string account;
  std::string currency;
  int64_t cost_micros = 0;
  uint64_t gpu_ms = 0;
};

struct MetricsInput {
  std::map<std::string, bool> service_up;  // "scheduler" -> answered this scrape
  std::optional<NodeStats> nodes;          // from the broker
  std::optional<JobStats> jobs;            // from the scheduler
  std::optional<std::vector<AccountSpend>> spend;  // from billing
  std::vector<OpsReport> ops;              // fresh ops.metrics.* reports
  // The gateway's own counters.
  uint64_t bus_events_seen = 0;
  uint64_t metric_points_seen = 0;
  uint64_t sse_clients = 0;
  uint64_t http_requests = 0;
  std::map<std::string, uint64_t> http_refused;  // "deadline" (408), "busy" (503), "head_too_large" (431)
  uint64_t bus_events_rejected = 0;
  uint64_t job_lists_read = 0;  // full job lists asked of the scheduler (table seeds, reads while the bus is silent)
};

// Queue wait histogram bounds, seconds.
const std::vector<double>& queue_wait_buckets();

std::string render_metrics(const MetricsInput& in);

}  // namespace trainyard::gateway
