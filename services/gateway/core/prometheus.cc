#include "core/prometheus.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "text/utf8.h"

namespace trainyard::gateway {

std::string PromWriter::sanitize_name(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

std::string PromWriter::escape_label(const std::string& s) {
  std::string out;
  // Label values from the bus (gauge, account and GPU type names) must be
  // UTF-8 or Prometheus refuses the whole scrape.
  for (char c : text::replace_invalid_utf8(s)) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string PromWriter::format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void PromWriter::family(const std::string& name, const std::string& type, const std::string& help) {
  current_ = name;
  std::string h;
  for (char c : help) {
    if (c == '\\') {
      h += "\\\\";
    } else if (c == '\n') {
      h += "\\n";
    } else {
      h.push_back(c);
    }
  }
  out_ += "# HELP " + name + " " + h + "\n";
  out_ += "# TYPE " + name + " " + type + "\n";
}

void PromWriter::sample(const Labels& labels, double value, const std::string& suffix) {
  out_ += current_ + suffix;
  if (!labels.empty()) {
    out_ += "{";
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ",";
      first = false;
      out_ += sanitize_name(k) + "=\"" + escape_label(v) + "\"";
    }
    out_ += "}";
  }
  out_ += " " + format_value(value) + "\n";
}

void PromWriter::histogram(const Labels& labels, const std::vector<double>& bounds, const std::vector<double>& obs) {
  std::vector<double> sorted = obs;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : sorted) sum += v;
  for (double b : bounds) {
    auto n = std::upper_bound(sorted.begin(), sorted.end(), b) - sorted.begin();
    Labels l = labels;
    l.emplace_back("le", format_value(b));
    sample(l, static_cast<double>(n), "_bucket");
  }
  Labels inf = labels;
  inf.emplace_back("le", "+Inf");
  sample(inf, static_cast<double>(sorted.size()), "_bucket");
  sample(labels, sum, "_sum");
  sample(labels, static_cast<double>(sorted.size()), "_count");
}

const std::vector<double>& queue_wait_buckets() {
  static const std::vector<double> b{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400};
  return b;
}

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Gauges named "*_ms" are milliseconds; Prometheus wants seconds.
double to_seconds(const std::string& name, double v) {
  if (name.size() > 3 && name.compare(name.size() - 3, 3, "_ms") == 0) return v / 1000.0;
  if (name.size() > 3 && name.compare(name.size() - 3, 3, "_us") == 0) return v / 1e6;
  return v;
}

using Samples = std::vector<std::pair<Labels, double>>;

// A family and its samples, left out when there are none.
void family_if_any(PromWriter& w, const std::string& name, const std::string& help, const Samples& samples) {
  if (samples.empty()) return;
  w.family(name, "gauge", help);
  for (const auto& [l, v] : samples) w.sample(l, v);
}

// A family of one sample without labels.
void single(PromWriter& w, const std::string& name, const std::string& type, const std::string& help, uint64_t v) {
  w.family(name, type, help);
  w.sample({}, static_cast<double>(v));
}

void render_service_up(PromWriter& w, const std::map<std::string, bool>& service_up) {
  w.family("trainyard_service_up", "gauge",
           "1 when the service answered the gateway during this scrape, 0 when it did not");
  for (const auto& [svc, up] : service_up) w.sample({{"service", svc}}, up ? 1 : 0);
}

void render_jobs(PromWriter& w, const JobStats& jobs) {
  w.family("trainyard_jobs", "gauge", "Jobs known to the scheduler, by state and partition");
  for (const auto& [key, n] : jobs.by_state_partition) {
    w.sample({{"state", key.first}, {"partition", key.second}}, static_cast<double>(n));
  }
  w.family("trainyard_queue_wait_seconds", "histogram",
           "Time from submit to start of every job that has started (latest attempt)");
  w.histogram({}, queue_wait_buckets(), jobs.queue_waits_s);
}

// One family per GpuCounts figure, each sampled by GPU type.
struct GpuFamily {
  const char* name;
  const char* help;
  uint64_t GpuCounts::*count;
};
constexpr GpuFamily kGpuFamilies[] = {
    {"trainyard_gpus", "GPUs on registered nodes, by GPU type", &GpuCounts::total},
    {"trainyard_gpus_allocated", "GPUs held by a lease, by GPU type", &GpuCounts::allocated},
    {"trainyard_gpus_idle", "Free GPUs on nodes that are up and not drained, by GPU type", &GpuCounts::idle},
    {"trainyard_gpus_unavailable", "Free GPUs on nodes that are down or drained, by GPU type",
     &GpuCounts::unavailable},
};

void render_nodes(PromWriter& w, const NodeStats& nodes) {
  w.family("trainyard_nodes", "gauge", "Nodes known to the resource broker, by status");
  w.sample({{"status", "up"}}, static_cast<double>(nodes.up));
  w.sample({{"status", "down"}}, static_cast<double>(nodes.down));
  w.sample({{"status", "drained"}}, static_cast<double>(nodes.drained));
  for (const auto& f : kGpuFamilies) {
    w.family(f.name, "gauge", f.help);
    for (const auto& [type, c] : nodes.gpus) w.sample({{"gpu_type", type}}, static_cast<double>(c.*f.count));
  }
}

void render_spend(PromWriter& w, const std::vector<AccountSpend>& spend) {
  w.family("trainyard_account_spend_micros_total", "counter",
           "Money charged to each account since billing started, in millionths of the currency unit");
  for (const auto& s : spend) {
    w.sample({{"account", s.account}, {"currency", s.currency}}, static_cast<double>(s.cost_micros));
  }
  w.family("trainyard_account_gpu_seconds_total", "counter", "GPU time charged to each account");
  for (const auto& s : spend) w.sample({{"account", s.account}}, static_cast<double>(s.gpu_ms) / 1000.0);
}

// Figures the services publish about themselves on ops.metrics.<service>.
// Names are the services' own; the well-known ones get a dedicated family.
void render_well_known_ops(PromWriter& w, const std::vector<OpsReport>& ops) {
  Samples cycle, lag, points;
  for (const auto& r : ops) {
    for (const auto& [name, v] : r.gauges) {
      if (r.service.rfind("scheduler", 0) == 0 && contains(name, "cycle")) {
        cycle.push_back({{{"instance", r.instance}, {"stat", name}}, to_seconds(name, v)});
      }
      if (contains(name, "lag")) {
        lag.push_back({{{"subscriber", r.service}, {"instance", r.instance}, {"name", name}}, v});
      }
      if (r.service.rfind("metrics", 0) == 0 && contains(name, "points")) {
        points.push_back({{{"instance", r.instance}, {"name", name}}, v});
      }
    }
  }
  family_if_any(w, "trainyard_scheduler_cycle_seconds",
                "Scheduling cycle time as the scheduler reports it on ops.metrics.scheduler (stat: its gauge name)",
                cycle);
  family_if_any(w, "trainyard_bus_lag",
                "How far each bus subscriber is behind, as it reports it on ops.metrics.<service> (name: its gauge)",
                lag);
  family_if_any(w, "trainyard_metric_points_ingested",
                "Metric points the metrics-aggregator reports it has stored (name: its gauge)", points);
}

void render_all_ops(PromWriter& w, const std::vector<OpsReport>& ops) {
  if (ops.empty()) return;
  w.family("trainyard_ops_value", "gauge", "Every gauge of every fresh ops.metrics.<service> report, as published");
  std::set<std::tuple<std::string, std::string, std::string>> seen;  // a repeated name would break the exposition
  for (const auto& r : ops) {
    for (const auto& [name, v] : r.gauges) {
      if (!seen.insert({r.service, r.instance, name}).second) continue;
      w.sample({{"service", r.service}, {"instance", r.instance}, {"name", name}}, v);
    }
  }
}

// The gateway's own counters.
void render_gateway(PromWriter& w, const MetricsInput& in) {
  single(w, "trainyard_gateway_bus_events_total", "counter", "Bus events the gateway received (any topic it watches)",
         in.bus_events_seen);
  single(w, "trainyard_gateway_metric_points_seen_total", "counter",
         "Metric points in the metric.batch events the gateway saw since it started", in.metric_points_seen);
  single(w, "trainyard_gateway_sse_clients", "gauge", "Open /api/v1/events and log-follow streams", in.sse_clients);
  single(w, "trainyard_gateway_http_requests_total", "counter", "HTTP requests the gateway answered",
         in.http_requests);
  if (!in.http_refused.empty()) {
    w.family("trainyard_gateway_http_refused_total", "counter",
             "Requests refused before any handler ran: deadline (408), busy (503), head_too_large (431)");
    for (const auto& [reason, n] : in.http_refused) w.sample({{"reason", reason}}, static_cast<double>(n));
  }
  single(w, "trainyard_gateway_bus_events_rejected_total", "counter",
         "Bus messages the gateway dropped (failed verification or handling)", in.bus_events_rejected);
  single(w, "trainyard_gateway_job_lists_read_total", "counter",
         "Full job lists the gateway asked the scheduler for (job table seeds, reads while the bus is silent)",
         in.job_lists_read);
}

}  // namespace

std::string render_metrics(const MetricsInput& in) {
  PromWriter w;
  render_service_up(w, in.service_up);
  if (in.jobs) render_jobs(w, *in.jobs);
  if (in.nodes) render_nodes(w, *in.nodes);
  if (in.spend) render_spend(w, *in.spend);
  render_well_known_ops(w, in.ops);
  render_all_ops(w, in.ops);
  render_gateway(w, in);
  return w.text();
}

}  // namespace trainyard::gateway
