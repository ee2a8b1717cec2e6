// The gateway's cloud routes: GET /api/v1/cloud (the broker's CloudStatus:
// pools and rented nodes) for the dashboard and scripts.
#pragma once

#include <httplib.h>

#include "backends.h"

namespace trainyard::gateway {

void install_cloud_routes(httplib::Server& server, Backends& backends);

}  // namespace trainyard::gateway
