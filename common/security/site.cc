#include "security/site.h"

#include <chrono>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>
#include <zmq.h>


namespace trainyard::security {
namespace {

std::atomic<Site*> g_current{nullptr};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string z85_encode(const void* data, size_t n) {
  std::string out(n * 5 / 4 + 1, '\0');
  zmq_z85_encode(out.data(), static_cast<const uint8_t*>(data), n);
  out.resize(n * 5 / 4);
  return out;
}

// One ZMTP metadata property: name length (1 byte), name, value length
// (4 bytes, big-endian), value.
std::string property(std::string_view name, std::string_view value) {
  std::string out;
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
  uint32_t n = static_cast<uint32_t>(value.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(value);
  return out;
}

std::optional<std::filesystem::file_time_type> mtime(const std::filesystem::path& p) {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(p, ec);
  if (ec) return std::nullopt;
  return t;
}

}  // namespace

Result<std::unique_ptr<Site>> open_site(zmq::context_t* ctx, const SecurityOptions& options) {
  if (!zmq_has("curve")) return Status::failed_precondition("this libzmq has no CURVE support (built without libsodium)");
  auto id = read_identity(options.key_file);
  if (!id) return Status(id.status().code(), "security.key: " + id.status().message());
  auto ring = Keyring::read(options.authorized_keys);
  if (!ring) return Status(ring.status().code(), "security.authorized_keys: " + ring.status().message());
  return std::unique_ptr<Site>(new Site(ctx, options, std::move(id).value(), std::move(ring).value()));
}

Result<std::unique_ptr<Site>> Site::load(const SecurityOptions& options) { return open_site(nullptr, options); }

Result<std::unique_ptr<Site>> Site::install(zmq::context_t& ctx, const SecurityOptions& options) {
  if (options.mode == Mode::kNone) return std::unique_ptr<Site>();
  if (current()) return Status::failed_precondition("a security Site is already installed in this process");
  auto opened = open_site(&ctx, options);
  if (!opened) return opened.status();
  auto site = std::move(opened).value();
  Site* expected = nullptr;
  if (!g_current.compare_exchange_strong(expected, site.get())) {
    return Status::failed_precondition("a security Site is already installed in this process");
  }
  return site;
}

Site* Site::current() { return g_current.load(std::memory_order_acquire); }

Site::Site(zmq::context_t* ctx, SecurityOptions options, Identity identity, Keyring ring)
    : options_(std::move(options)),
      identity_(std::move(identity)),
      ring_(std::make_shared<const Keyring>(std::move(ring))) {
  ring_mtime_ = mtime(options_.authorized_keys).value_or(std::filesystem::file_time_type{});
  if (!ctx) return;
  zap_.emplace(*ctx, zmq::socket_type::rep);
  zap_->set(zmq::sockopt::linger, 0);
  zap_->bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { serve_zap(); });
}

Site::~Site() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  Site* self = this;
  g_current.compare_exchange_strong(self, nullptr);
}

void Site::serve(zmq::socket_t& socket) const {
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, identity_.keys.secret_key);
  socket.set(zmq::sockopt::zap_domain, kZapDomain);
}

Status Site::dial(zmq::socket_t& socket, std::string_view server_principal) const {
  auto ring = keyring();
  auto key = ring->key_of(server_principal);
  if (!key) {
    return Status::not_found("no public key for " + std::string(server_principal) + " in " +
                             options_.authorized_keys.string() + "; add its .pub line there");
  }
  socket.set(zmq::sockopt::curve_serverkey, *key);
  socket.set(zmq::sockopt::curve_publickey, identity_.keys.public_key);
  socket.set(zmq::sockopt::curve_secretkey, identity_.keys.secret_key);
  return Status::success();
}

std::optional<std::string> Site::publisher(std::string_view instance) const { return keyring()->publisher(instance); }

bool Site::authorized(std::string_view principal, std::string_view key) const {
  auto k = keyring()->key_of(principal);
  return k && *k == key;
}

std::shared_ptr<const Keyring> Site::keyring() const {
  std::lock_guard lock(mu_);
  return ring_;
}

Status Site::reload() {
  auto ring = Keyring::read(options_.authorized_keys);
  if (!ring) {
    spdlog::error("security: keeping the previous authorized keys: {}", ring.status().message());
    return ring.status();
  }
  size_t n = ring->size();
  {
    std::lock_guard lock(mu_);
    auto fresh = std::make_shared<const Keyring>(std::move(ring).value());
    if (ring_) note_changes(*ring_, *fresh);
    ring_ = std::move(fresh);
  }
  ++counters_.reloads;
  spdlog::info("security: reloaded {} ({} principals)", options_.authorized_keys.string(), n);
  return Status::success();
}

void Site::note_changes(const Keyring& before, const Keyring& after) {
  constexpr size_t kMaxKept = 1024;
  auto note = [&](const std::string& principal, std::string change, const std::string& key) {
    if (keyring_changes_.size() < kMaxKept) {
      keyring_changes_.push_back({principal, std::move(change), key});
    } else if (keyring_changes_.size() == kMaxKept) {
      keyring_changes_.push_back({"...", "more changes not listed one by one", ""});
    }
  };
  for (auto& [principal, key] : after.principals()) {
    auto old = before.key_of(principal);
    if (!old) {
      note(principal, "authorized", key);
    } else if (*old != key) {
      note(principal, "key replaced", key);
    }
  }
  for (auto& [principal, key] : before.principals()) {
    if (!after.key_of(principal)) note(principal, "revoked", "");
  }
}

std::vector<KeyringChange> Site::take_keyring_changes() {
  std::lock_guard lock(mu_);
  return std::exchange(keyring_changes_, {});
}

void Site::reload_if_changed() {
  auto t = mtime(options_.authorized_keys);
  if (!t || *t == ring_mtime_) return;
  ring_mtime_ = *t;
  (void)reload();
}

void Site::serve_zap() {
  int64_t next_check = now_ms() + options_.reload_check_ms;
  while (!stop_) {
    zmq::pollitem_t item{zap_->handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if (item.revents & ZMQ_POLLIN) answer(*zap_);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      spdlog::error("security: ZAP handler: {}", e.what());
    }
    if (now_ms() >= next_check) {
      reload_if_changed();
      next_check = now_ms() + options_.reload_check_ms;
    }
  }
}

void Site::note_refusal(std::string address, std::string key, std::string why) {
  std::lock_guard lock(mu_);
  for (auto& r : refusals_) {
    if (r.address == address && r.key == key) {
      ++r.count;
      return;
    }
  }
  if (refusals_.size() < 64) refusals_.push_back(Refusal{std::move(address), std::move(key), std::move(why), 1});
}

std::vector<Refusal> Site::take_refusals() {
  std::lock_guard lock(mu_);
  return std::exchange(refusals_, {});
}

// RFC 27: version, request id, domain, address, routing id, mechanism,
// credentials; the reply: version, request id, status code, status text,
// user id, metadata.
void Site::answer(zmq::socket_t& rep) {
  std::vector<zmq::message_t> frames;
  do {
    frames.emplace_back();
    (void)rep.recv(frames.back());
  } while (frames.back().more());
  auto text = [&](size_t i) { return i < frames.size() ? frames[i].to_string() : std::string(); };
  std::string code = "400", status = "unknown key", user, metadata;
  if (frames.size() >= 7 && text(5) == "CURVE" && frames[6].size() == 32) {
    std::string key = z85_encode(frames[6].data(), 32);
    if (auto p = keyring()->principal_of(key)) {
      code = "200", status = "OK", user = *p;
      metadata = property(kKeyProperty, key);
      ++counters_.accepted;
    } else {
      ++counters_.refused;
      note_refusal(text(3), key, "unknown key");
      ++refusals_unlogged_;
      if (now_ms() - last_refusal_log_ms_ >= 10'000) {
        spdlog::warn("security: refused {} connection(s) with unknown keys, the last from {} (key {})",
                     refusals_unlogged_, text(3), key);
        refusals_unlogged_ = 0;
        last_refusal_log_ms_ = now_ms();
      }
    }
  } else {
    ++counters_.refused;
    status = "CURVE required";
    note_refusal(text(3), "", status);
  }
  std::string parts[] = {"1.0", text(1), code, status, user, metadata};
  for (size_t i = 0; i < 6; ++i) {
    rep.send(zmq::buffer(parts[i]), i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::string authenticated_principal(const zmq::message_t& msg) {
  Site* site = Site::current();
  if (!site) return {};
  auto* m = const_cast<zmq_msg_t*>(msg.handle());
  const char* user = zmq_msg_gets(m, "User-Id");
  const char* key = zmq_msg_gets(m, kKeyProperty);
  if (!user || !key || !site->authorized(user, key)) return {};
  return user;
}

}  // namespace trainyard::security

namespace trainyard::security {

void secure_server(zmq::socket_t& socket) {
  if (Site* site = Site::current()) site->serve(socket);
}

Status secure_client(zmq::socket_t& socket, std::string_view server_principal, const Site* site) {
  if (!site) site = Site::current();
  return site ? site->dial(socket, server_principal) : Status::success();
}

}  // namespace trainyard::security
