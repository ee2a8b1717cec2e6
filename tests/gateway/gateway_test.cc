// The gateway against real processes: first alone, with every service down
// (503s naming the service, fast; 4xx JSON errors for bad requests; /metrics
// still valid), then in front of a whole local Trainyard (bus, scheduler,
// broker, agent, metrics-aggregator, billing) running a real training
// script: REST bodies, live events over SSE, logs, comparisons, usage,
// /metrics, cancel, and the dashboard in headless Chromium. This file: the
// gateway alone; the whole local Trainyard is in gateway_cluster_test.cc.
#define BOOST_TEST_MODULE gateway
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>

#include "gateway_support.h"
#include "process.h"
#include "prom_check.h"

using namespace trainyard::testing;
using namespace std::chrono_literals;

namespace {

const std::string kDead = "tcp://127.0.0.1:9";  // nothing listens there

}  // namespace

BOOST_AUTO_TEST_CASE(with_every_service_down_each_endpoint_answers_503_naming_the_service_within_seconds) {
  TempDir dir;
  Gateway gw(dir, {"bus.backend=" + kDead, "scheduler.endpoint=" + kDead, "broker.endpoint=" + kDead,
                   "metrics.endpoint=" + kDead, "billing.endpoint=" + kDead, "gateway.rpc_timeout_ms=400",
                   "gateway.rpc_tries=2"});
  Http http(gw.url, gw.token_for("ana"));
  struct Case {
    std::string path, service;
  } cases[] = {
      {"/api/v1/cluster", "resource-broker"},
      {"/api/v1/nodes", "resource-broker"},
      {"/api/v1/jobs", "scheduler"},
      {"/api/v1/jobs?state=Running&user=ana", "scheduler"},
      {"/api/v1/jobs/7", "scheduler"},
      {"/api/v1/jobs/7/logs", "scheduler"},
      {"/api/v1/jobs/7/metrics", "metrics-aggregator"},
      {"/api/v1/jobs/7/series?name=loss", "metrics-aggregator"},
      {"/api/v1/experiments", "scheduler"},
      {"/api/v1/experiments/moons/compare?metric=loss", "metrics-aggregator"},
      {"/api/v1/compare?jobs=1,2&metric=accuracy", "metrics-aggregator"},
      {"/api/v1/usage?group_by=day", "billing"},
      {"/api/v1/accounts", "billing"},
      {"/api/v1/accounts/vision/invoice?month=2026-01", "billing"},
  };
  for (const auto& c : cases) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = http.get(c.path);
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(r.status == 503, c.path << " -> " << r.status << " " << r.text);
    BOOST_TEST(r.body.value("service", "") == c.service, c.path << " -> " << r.text);
    BOOST_TEST(r.body.value("error", "").find(c.service) != std::string::npos, r.text);
    BOOST_TEST(r.body.value("code", "") == "Unavailable");
    BOOST_TEST(took < 3s, c.path << " took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                 << " ms");
  }
  // Writes: the principal is checked first, then the scheduler is asked.
  auto r = http.post("/api/v1/jobs", R"({"command":["true"]})");
  BOOST_TEST(r.status == 503);
  BOOST_TEST(r.body.value("service", "") == "scheduler");
  r = http.post("/api/v1/jobs/7/cancel", "");
  BOOST_TEST(r.status == 503);

  // /metrics stays scrapeable: valid text that says who is down, in one timeout.
  auto t0 = std::chrono::steady_clock::now();
  r = http.get("/metrics");
  BOOST_TEST((std::chrono::steady_clock::now() - t0) < 3s);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.content_type.find("text/plain") == 0u);
  std::string err;
  auto prom = parse_prometheus(r.text, &err);
  BOOST_REQUIRE_MESSAGE(prom, err << "\n" << r.text);
  for (const char* s : {"scheduler", "resource-broker", "metrics-aggregator", "billing"}) {
    BOOST_TEST(prom->get("trainyard_service_up", {{"service", s}}) == 0.0, s);
  }
  BOOST_TEST(!prom->value("trainyard_gpus"));  // no made-up numbers

  auto health = http.get("/api/v1/health");
  BOOST_TEST(health.status == 200);
  BOOST_TEST(health.body["ok"] == false);
  BOOST_TEST(health.body["services"]["billing"]["up"] == false);
}

BOOST_AUTO_TEST_CASE(bad_requests_get_4xx_with_a_json_error_naming_the_field) {
  TempDir dir;
  Gateway gw(dir, {"bus.backend=" + kDead, "scheduler.endpoint=" + kDead, "broker.endpoint=" + kDead,
                   "metrics.endpoint=" + kDead, "billing.endpoint=" + kDead, "gateway.rpc_timeout_ms=300"});
  Http http(gw.url, gw.token_for("ana"));
  Http anonymous(gw.url);
  struct Case {
    std::string path;
    int status;
    std::string field;
  } gets[] = {
      {"/api/v1/jobs?state=Sleeping", 400, "state"},
      {"/api/v1/jobs?limit=0", 400, "limit"},
      {"/api/v1/jobs?limit=ten", 400, "limit"},
      {"/api/v1/jobs/1/series", 400, "name"},
      {"/api/v1/jobs/1/series?name=loss&max_points=1", 400, "max_points"},
      {"/api/v1/jobs/1/series?name=loss&from_step=9&to_step=2", 400, "from_step"},
      {"/api/v1/jobs/1/logs?stream=stdin", 400, "stream"},
      {"/api/v1/experiments/x/compare", 400, "metric"},
      {"/api/v1/experiments/x/compare?metric=loss&goal=best", 400, "goal"},
      {"/api/v1/compare?metric=loss", 400, "jobs"},
      {"/api/v1/compare?metric=loss&jobs=1,x", 400, "jobs"},
      {"/api/v1/usage?group_by=planet", 400, "group_by"},
      {"/api/v1/usage?since=yesterday", 400, "since"},
      {"/api/v1/accounts/vision/invoice?month=2026-13", 400, "month"},
      {"/api/v1/events?kinds=job,weather", 400, "kinds"},
      {"/api/v1/events/recent?limit=0", 400, "limit"},
  };
  for (const auto& c : gets) {
    auto r = http.get(c.path);
    BOOST_TEST(r.status == c.status, c.path << " -> " << r.status << " " << r.text);
    BOOST_TEST(r.body.is_object(), c.path);
    BOOST_TEST(r.body.value("field", "") == c.field, c.path << " -> " << r.text);
    BOOST_TEST(!r.body.value("error", "").empty(), c.path);
  }
  auto r = http.get("/api/v1/no/such/thing");
  BOOST_TEST(r.status == 404);
  BOOST_TEST(r.body["field"].is_null());
  BOOST_TEST(r.body.value("error", "").find("/api/v1/no/such/thing") != std::string::npos);

  r = anonymous.post("/api/v1/jobs", R"({"command":["true"]})");
  BOOST_TEST(r.status == 401);
  r = http.post("/api/v1/jobs", "{not json");
  BOOST_TEST(r.status == 400);
  r = http.post("/api/v1/jobs", R"({"command":["true"],"gpu":4})");
  BOOST_TEST(r.status == 400);
  BOOST_TEST(r.body.value("field", "") == "gpu");
  r = http.post("/api/v1/jobs", R"({"command":["true"],"user":"bob"})");
  BOOST_TEST(r.status == 403);
  r = anonymous.post("/api/v1/jobs/5/cancel", "");
  BOOST_TEST(r.status == 401);
}
