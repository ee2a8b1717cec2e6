// `ty token create|list|revoke`: personal API tokens for the gateway's REST
// API and browser login, kept (hashed) by the gateway and managed through its
// ROUTER (gateway.endpoint). Also the one-time login links `ty local` prints.
#pragma once

#include <string>

#include "commands.h"

namespace trainyard::security {
class Site;
}

namespace trainyard::ty {

void add_token_commands(CLI::App& app, Context& ctx, Action& action);

// A one-time browser login secret for `user` from the gateway at `endpoint`
// (GET /?token=SECRET logs the browser in once).
Result<std::string> create_login_link(const std::string& endpoint, const std::string& user, int timeout_ms,
                                      const security::Site* site = nullptr);

}  // namespace trainyard::ty
