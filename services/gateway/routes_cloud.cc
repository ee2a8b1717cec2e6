// GET /api/v1/cloud[?pool=NAME&ended=1]: the cloud pools and their leases,
// as `ty cloud status --json` prints them.
#include "routes_cloud.h"

#include "http_util.h"

namespace trainyard::gateway {

namespace {

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

Json lease_json(const fb::CloudLease& l) {
  return {{"lease_id", l.lease_id()},       {"pool", str(l.pool())},
          {"state", fb::EnumNameCloudLeaseState(l.state())},
          {"node", str(l.node())},          {"instance_id", str(l.instance_id())},
          {"reason", str(l.reason())},      {"failure", str(l.failure())},
          {"gpu_type", str(l.gpu_type())},  {"gpus", l.gpus()},
          {"spot", l.spot()},               {"price_micros_per_hour", l.price_micros_per_hour()},
          {"for_job", l.for_job()},         {"account", str(l.account())},
          {"requested_ns", l.requested_ns()}, {"ready_ns", l.ready_ns()},
          {"state_ns", l.state_ns()},       {"ended_ns", l.ended_ns()},
          {"expected_ready_ns", l.expected_ready_ns()}};
}

Json pool_json(const fb::CloudPoolStatus& p) {
  return {{"name", str(p.name())},
          {"gpu_type", str(p.gpu_type())},
          {"gpus_per_node", p.gpus_per_node()},
          {"partition", str(p.partition())},
          {"min_nodes", p.min_nodes()},
          {"max_nodes", p.max_nodes()},
          {"price_micros_per_hour", p.price_micros_per_hour()},
          {"spot_price_micros_per_hour", p.spot_price_micros_per_hour()},
          {"paused", p.paused()},
          {"pause_reason", str(p.pause_reason())},
          {"backoff_until_ns", p.backoff_until_ns()},
          {"backoff_reason", str(p.backoff_reason())},
          {"live_nodes", p.live_nodes()},
          {"ready_nodes", p.ready_nodes()},
          {"max_wait_before_burst_s", p.max_wait_before_burst_s()}};
}

}  // namespace

void install_cloud_routes(httplib::Server& server, Backends& backends) {
  server.Get("/api/v1/cloud", [&backends](const httplib::Request& req, httplib::Response& res) {
    std::string pool = req.has_param("pool") ? req.get_param_value("pool") : std::string();
    bool ended = req.has_param("ended") && req.get_param_value("ended") != "0";
    auto r = backends.call(Service::kBroker, fb::RequestBody::CloudStatus, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateCloudStatusDirect(b, pool.c_str(), ended).Union();
    });
    if (!r) return send_failure(res, r.status(), Service::kBroker);
    const auto* report = r->body<fb::CloudReport>();
    Json out = {{"paused", report && report->paused()},
                {"pause_reason", report ? str(report->pause_reason()) : std::string()},
                {"pools", Json::array()},
                {"leases", Json::array()}};
    if (report && report->pools()) {
      for (const auto* p : *report->pools()) out["pools"].push_back(pool_json(*p));
    }
    if (report && report->leases()) {
      for (const auto* l : *report->leases()) out["leases"].push_back(lease_json(*l));
    }
    send_json(res, 200, out);
  });
}

}  // namespace trainyard::gateway
