// GET /api/v1/cloud[?pool=NAME&ended=1]: the cloud pools and their leases,
// as `ty cloud status --json` prints them.
#include "routes_cloud.h"

#include "http_util.h"
#include "records/record_json.h"

namespace trainyard::gateway {

void install_cloud_routes(httplib::Server& server, Backends& backends) {
  server.Get("/api/v1/cloud", [&backends](const httplib::Request& req, httplib::Response& res) {
    std::string pool = req.has_param("pool") ? req.get_param_value("pool") : std::string();
    bool ended = req.has_param("ended") && req.get_param_value("ended") != "0";
    auto r = backends.call(Service::kBroker, fb::RequestBody::CloudStatus, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateCloudStatusDirect(b, pool.c_str(), ended).Union();
    });
    if (!r) return send_failure(res, r.status(), Service::kBroker);
    send_json(res, 200, records::cloud_report_json(r->body<fb::CloudReport>()));
  });
}

}  // namespace trainyard::gateway
