// The CURVE identities of rented nodes (cloud_keys.h).
#include "cloud_keys.h"

#include <fmt/format.h>

#include "security/keys.h"

namespace trainyard::broker {

namespace {

// The slot's key, checked against the keyring.
Result<security::Identity> slot_identity(const security::Site& site, const std::filesystem::path& dir,
                                         std::string_view node) {
  std::string principal = "agent:" + std::string(node);
  auto file = dir / security::key_file_name(principal);
  auto id = security::read_identity(file);
  if (!id) {
    return Status::failed_precondition(fmt::format(
        "rented node {} has no usable key: {} (make the pool's keys with `ty admin keys init DIR --agent "
        "<pool>-[0-<max_nodes - 1>]` or `ty admin keys add DIR {}`, and give authorized_keys to every host)",
        node, id.status().message(), principal));
  }
  if (id->principal != principal) {
    return Status::failed_precondition(
        fmt::format("{}: holds the key of {}, not {}", file.string(), id->principal, principal));
  }
  auto ring = site.keyring();
  auto listed = ring ? ring->key_of(principal) : std::nullopt;
  if (!listed || *listed != id->keys.public_key) {
    return Status::failed_precondition(fmt::format(
        "{}: the site's authorized keys {} {} (add it with `ty admin keys add DIR {} --public {}`)", file.string(),
        listed ? "give another key to" : "do not list", principal, principal, id->keys.public_key));
  }
  return id;
}

}  // namespace

Status check_pool_keys(const security::Site* site, const std::filesystem::path& dir, const PoolConfig& p) {
  if (!site) return Status::success();
  for (uint32_t slot = 0; slot < p.max_nodes; ++slot) {
    auto id = slot_identity(*site, dir, fmt::format("{}-{}", p.name, slot));
    if (!id) return Status::failed_precondition(fmt::format("pools.{}: {}", p.name, id.status().message()));
  }
  return Status::success();
}

Result<nlohmann::json> node_security(const security::Site* site, const std::filesystem::path& dir,
                                     std::string_view node) {
  if (!site) return nlohmann::json{{"mode", "none"}};
  auto id = slot_identity(*site, dir, node);
  if (!id) return id.status();
  return nlohmann::json{{"mode", "curve"},
                        {"principal", id->principal},
                        {"key", security::format_identity(*id)},
                        {"authorized_keys", security::format_keyring(site->keyring()->principals())}};
}

}  // namespace trainyard::broker
