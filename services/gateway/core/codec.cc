#include "core/codec.h"

#include <algorithm>
#include <cmath>

#include "records/fb_json.h"

namespace trainyard::gateway {

using records::key_values;
using records::number_or_null;
using records::numbers;
using records::str;

double micros_to_amount(int64_t micros) { return static_cast<double>(micros) / 1e6; }

Json to_json(const fb::MetricSummaries& m) {
  Json list = Json::array();
  if (m.metrics()) {
    for (const auto* s : *m.metrics()) {
      list.push_back({{"name", str(s->name())},
                      {"count", s->count()},
                      {"last", number_or_null(s->last())},
                      {"last_step", s->last_step()},
                      {"min", number_or_null(s->min())},
                      {"min_step", s->min_step()},
                      {"max", number_or_null(s->max())},
                      {"max_step", s->max_step()}});
    }
  }
  return Json{{"job_id", m.job_id()}, {"metrics", list}};
}

Json to_json(const fb::Series& s) {
  Json values = Json::array();
  if (s.values()) {
    for (double v : *s.values()) values.push_back(number_or_null(v));
  }
  return Json{{"job_id", s.job_id()},
              {"name", str(s.name())},
              {"steps", numbers(s.steps())},
              {"values", values},
              {"total_points", s.total_points()}};
}

Json to_json(const fb::UsageReport& u) {
  const fb::UsageReport* one[] = {&u};
  return to_json(one);
}

Json to_json(std::span<const fb::UsageReport* const> pages) {
  Json rows = Json::array();
  int64_t total = 0;
  std::string currency;
  for (const auto* u : pages) {
    if (u->currency()) currency = u->currency()->str();
    if (!u->rows()) continue;
    for (const auto* r : *u->rows()) {
      total += r->cost_micros();
      rows.push_back({{"key", str(r->key())},
                      {"gpu_ms", r->gpu_ms()},
                      {"cpu_ms", r->cpu_ms()},
                      {"memory_mb_ms", r->memory_mb_ms()},
                      {"gpu_hours", static_cast<double>(r->gpu_ms()) / 3.6e6},
                      {"cost_micros", r->cost_micros()},
                      {"cost", micros_to_amount(r->cost_micros())}});
    }
  }
  return Json{{"currency", currency}, {"rows", rows}, {"total_micros", total}, {"total", micros_to_amount(total)}};
}

Json to_json(const fb::Invoice& inv) {
  Json lines = Json::array();
  if (inv.lines()) {
    for (const auto* l : *inv.lines()) {
      lines.push_back({{"user", str(l->user())},
                       {"resource", str(l->resource())},
                       {"gpu_type", str(l->gpu_type())},
                       {"quantity_ms", l->quantity_ms()},
                       {"hours", static_cast<double>(l->quantity_ms()) / 3.6e6},
                       {"cost_micros", l->cost_micros()},
                       {"cost", micros_to_amount(l->cost_micros())}});
    }
  }
  return Json{{"account", str(inv.account())},
              {"month", str(inv.month())},
              {"currency", str(inv.currency())},
              {"lines", lines},
              {"total_micros", inv.total_micros()},
              {"total", micros_to_amount(inv.total_micros())}};
}

Json to_json(const fb::Comparison& c, bool maximize) {
  struct Row {
    Json j;
    double best;
    bool has;
  };
  std::vector<Row> rows;
  if (c.rows()) {
    for (const auto* r : *c.rows()) {
      bool has = std::isfinite(r->best_value());
      rows.push_back({Json{{"job_id", r->job_id()},
                           {"name", str(r->name())},
                           {"final_value", number_or_null(r->final_value())},
                           {"final_step", r->final_step()},
                           {"best_value", number_or_null(r->best_value())},
                           {"best_step", r->best_step()},
                           {"labels", key_values(r->labels())}},
                      r->best_value(), has});
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (a.has != b.has) return a.has;
    if (!a.has) return false;
    return maximize ? a.best > b.best : a.best < b.best;
  });
  Json best = rows.empty() || !rows.front().has ? Json(nullptr) : rows.front().j["job_id"];
  Json out = Json::array();
  int rank = 0;
  for (auto& r : rows) {
    r.j["rank"] = ++rank;
    out.push_back(std::move(r.j));
  }
  return Json{{"metric", str(c.metric())}, {"maximize", maximize}, {"rows", out}, {"best_job_id", best}};
}

}  // namespace trainyard::gateway
