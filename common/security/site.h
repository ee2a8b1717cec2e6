// The security of this process: who it is (its CURVE key) and whom it
// trusts (the site's authorized keys). A process has one identity, as it
// has one uid, so it is installed once, next to the process's ZeroMQ
// context, and every socket Trainyard makes (rpc::Server and clients, bus
// publishers, subscribers and forwarders) asks it how to secure itself.
//
// With nothing installed (security.mode = "none", or a unit test) sockets
// stay plaintext and peers are believed on their word.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <zmq.hpp>

#include "security/keys.h"
#include "util/status.h"

namespace trainyard {
class Config;
}

namespace trainyard::security {

enum class Mode { kNone, kCurve };

struct SecurityOptions {
  Mode mode = Mode::kCurve;
  std::filesystem::path key_file;         // this process's key (mode 0600)
  std::filesystem::path authorized_keys;  // the site's keyring
  int reload_check_ms = 1000;             // how often the keyring's mtime is looked at
};

// The options of a process that is `principal`: security.mode ("curve" by
// default, or "none"), security.keys_dir (default /etc/trainyard/keys),
// security.key (default KEYS_DIR/<kind>-<name>.key, see key_file_name),
// security.authorized_keys (default KEYS_DIR/authorized_keys),
// security.reload_check_ms. InvalidArgument names the key that is wrong.
Result<SecurityOptions> options_from_config(const Config& config, std::string_view principal);
// [security.roles] admins, operators and [security.accounts.<name>]
// members, coordinators (user names): the site's directory.
Result<struct Directory> directory_from_config(const Config& config);
// What every service needs to apply the rules and write the audit trail.
struct TrustSettings;
Result<TrustSettings> trust_from_config(const Config& config);
// "service:scheduler" -> "service-scheduler.key": a key's file in a keys dir.
std::filesystem::path key_file_name(std::string_view principal);

// The ZAP domain every Trainyard server socket uses.
inline constexpr const char* kZapDomain = "trainyard";
// The ZAP metadata property that carries the client's public key (Z85).
inline constexpr const char* kKeyProperty = "X-Curve-Key";

struct Counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};  // handshakes with a key the site does not list
  std::atomic<uint64_t> reloads{0};
};

// A handshake the ZAP handler refused, for the audit trail.
struct Refusal {
  std::string address;  // the peer's IP address
  std::string key;      // its public key (Z85), "" when it offered no CURVE
  std::string why;      // "unknown key", "CURVE required"
  uint64_t count = 1;   // refusals of this key from this address since the last take
};

// One principal whose authorized key a keyring reload changed, for the
// audit trail: `ty admin keys add|revoke` (or any edit of the file) is an
// admin action every service that reloads it records.
struct KeyringChange {
  std::string principal;
  std::string change;  // "authorized", "revoked", "key replaced"
  std::string key;     // the new public key ("" when revoked)
};

class Site;
Result<std::unique_ptr<Site>> open_site(zmq::context_t* ctx, const SecurityOptions& options);

class Site {
 public:
  // Reads the key and the keyring, becomes the process's current Site,
  // and answers ZAP requests on `ctx` from a thread of its own (which also
  // re-reads the keyring when it changes) until the returned Site is
  // destroyed (destroy it before the context). One Site is current at a time.
  static Result<std::unique_ptr<Site>> install(zmq::context_t& ctx, const SecurityOptions& options);
  // Reads the key and the keyring only: an identity a client brings to its
  // own sockets (rpc::ClientOptions::site), e.g. the client library acting
  // for one user. It serves nothing and is not current.
  static Result<std::unique_ptr<Site>> load(const SecurityOptions& options);
  // The installed Site, or null when sockets stay plaintext.
  static Site* current();
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  const std::string& principal() const { return identity_.principal; }
  // Makes `socket` a CURVE server whose clients the ZAP handler checks.
  void serve(zmq::socket_t& socket) const;
  // Makes `socket` a CURVE client of `server_principal`, whose public key
  // comes from the keyring. NotFound when the keyring does not list it.
  Status dial(zmq::socket_t& socket, std::string_view server_principal) const;
  // The principal publishing as `instance` ("service:X" or "agent:X").
  std::optional<std::string> publisher(std::string_view instance) const;
  // True while `principal` still holds `key` in the keyring: a revoked or
  // replaced key stops working on connections already open.
  bool authorized(std::string_view principal, std::string_view key) const;
  // Re-reads the authorized keys (SIGHUP, or when its mtime changes). A
  // broken file is refused (the previous keyring stays) and logged.
  Status reload();
  std::shared_ptr<const Keyring> keyring() const;
  const Counters& counters() const { return counters_; }
  // The handshakes refused since the last call, one entry per key and
  // address (at most 64; the rest only counted in counters().refused).
  std::vector<Refusal> take_refusals();
  // What the reloads since the last call changed, principal by principal (at
  // most 1024 kept; a larger edit is summed up in one "..." entry).
  std::vector<KeyringChange> take_keyring_changes();

 private:
  friend Result<std::unique_ptr<Site>> open_site(zmq::context_t* ctx, const SecurityOptions& options);
  Site(zmq::context_t* ctx, SecurityOptions options, Identity identity, Keyring ring);
  void serve_zap();
  void answer(zmq::socket_t& rep);
  void reload_if_changed();

  SecurityOptions options_;
  Identity identity_;
  mutable std::mutex mu_;
  std::shared_ptr<const Keyring> ring_;
  std::filesystem::file_time_type ring_mtime_{};
  Counters counters_;
  std::atomic<bool> stop_{false};
  std::optional<zmq::socket_t> zap_;
  std::thread thread_;
  int64_t last_refusal_log_ms_ = 0;
  uint64_t refusals_unlogged_ = 0;
  std::vector<Refusal> refusals_;  // guarded by mu_
  std::vector<KeyringChange> keyring_changes_;  // guarded by mu_
  void note_refusal(std::string address, std::string key, std::string why);
  void note_changes(const Keyring& before, const Keyring& after);  // mu_ held
};

// The principal a received message came from, as the ZAP handler named it
// (its User-Id), or "" on a plaintext socket. The message's key must still
// be authorized: a revoked key gives "".
std::string authenticated_principal(const zmq::message_t& msg);

}  // namespace trainyard::security

namespace trainyard::security {
// What every Trainyard socket calls: with a Site installed, secure it with
// CURVE (a server, or a client of `server_principal`); without, nothing.
// `site` (default: the current Site) is whose key the client proves.
void secure_server(zmq::socket_t& socket);
Status secure_client(zmq::socket_t& socket, std::string_view server_principal, const Site* site = nullptr);
}  // namespace trainyard::security
