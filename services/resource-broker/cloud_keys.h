// The CURVE identities of rented nodes. A pool's nodes are slots
// ("<pool>-<slot>", slot < max_nodes, CloudPools::free_slots), declared in
// advance as Slurm's CLOUD nodes are: each has a key like any node's
// (`ty admin keys init DIR --agent aws-a100-[0-15]`), listed in the site's
// authorized keys, so every service, forwarder and client already knows
// it. The broker holds the slots' secret keys (in the pool's keys_dir,
// default security.keys_dir) and hands one to the driver with each launch,
// on the driver's stdin, never in an argument.
#pragma once

#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/cloud_lease.h"
#include "security/site.h"
#include "util/status.h"

namespace trainyard::broker {

// Under CURVE (`site` not null): every slot of `p` has a key file in `dir`
// that read_identity accepts (mode 0600, its own keys), of principal
// agent:<pool>-<slot>, whose public key the site's keyring lists.
// FailedPrecondition names the first that is not, and the command that
// makes it. Without a site: ok.
Status check_pool_keys(const security::Site* site, const std::filesystem::path& dir, const PoolConfig& p);

// The launch request's "bootstrap.security" for `node`:
// {"mode": "none"} without a site; else {"mode": "curve", "principal",
// "key" (the key file's text, mode 0600 where it is written),
// "authorized_keys" (the site's keyring now)}.
Result<nlohmann::json> node_security(const security::Site* site, const std::filesystem::path& dir,
                                     std::string_view node);

}  // namespace trainyard::broker
