#include "bus/forwarder.h"

#include <atomic>
#include <chrono>

#include <spdlog/spdlog.h>

#include "bus/event.h"
#include "security/keys.h"
#include "security/site.h"

namespace trainyard::bus {

Forwarder::Forwarder(zmq::context_t& ctx, const ForwarderOptions& options)
    : ctx_(ctx),
      xsub_(ctx, zmq::socket_type::xsub),
      xpub_(ctx, zmq::socket_type::xpub),
      control_(ctx, zmq::socket_type::pair) {
  static std::atomic<int> counter{0};
  control_endpoint_ = "inproc://forwarder-control-" + std::to_string(counter++);
  check_streams_ = options.check_streams;
  audit_instance_ = options.audit_instance;
  xsub_.set(zmq::sockopt::rcvhwm, options.hwm);
  xsub_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes));
  xsub_.set(zmq::sockopt::linger, 0);
  security::secure_server(xsub_);
  security::secure_server(xpub_);
  xpub_.set(zmq::sockopt::sndhwm, options.hwm);
  xpub_.set(zmq::sockopt::linger, 0);
  // Checked: the forwarder decides which subscriptions take effect.
  if (security::Site::current() && check_streams_) xpub_.set(zmq::sockopt::xpub_manual, true);
  xsub_.bind(options.frontend);
  xpub_.bind(options.backend);
  control_.set(zmq::sockopt::linger, 0);
  control_.bind(control_endpoint_);
  frontend_ = xsub_.get(zmq::sockopt::last_endpoint);
  backend_ = xpub_.get(zmq::sockopt::last_endpoint);
}

void Forwarder::run() {
  try {
    if (security::Site::current() && check_streams_) return run_checked();
    zmq::proxy_steerable(xsub_, xpub_, zmq::socket_ref(), control_);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
}

void Forwarder::run_checked() {
  // Publishers send only what someone subscribed to: the forwarder asks for
  // the heartbeats of every ops.* stream itself (each service publishes its
  // gauges there), to learn the audit keeper's endpoint from its own.
  if (!audit_instance_.empty()) {
    std::string own = "\x01" + std::string(kHeartbeatPrefix) + "ops.";
    xsub_.send(zmq::buffer(own), zmq::send_flags::none);
  }
  zmq::pollitem_t items[] = {{xsub_.handle(), 0, ZMQ_POLLIN, 0},
                             {xpub_.handle(), 0, ZMQ_POLLIN, 0},
                             {control_.handle(), 0, ZMQ_POLLIN, 0}};
  while (true) {
    zmq::poll(items, 3, std::chrono::milliseconds(-1));
    if (items[2].revents & ZMQ_POLLIN) return;  // TERMINATE
    // Publications first, in bursts, then the subscriptions going up.
    for (int i = 0; (items[0].revents & ZMQ_POLLIN) && i < 4096 && forward_one(); ++i) {
    }
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (xpub_.recv(m, zmq::recv_flags::dontwait)) {
        if (!subscribe(m)) continue;
        bool more = m.more();
        xsub_.send(m, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  }
}

// Reads one whole message from the publishers' side and forwards it if
// its publisher may publish it. False when nothing was waiting.
bool Forwarder::forward_one() {
  std::vector<zmq::message_t> frames;
  frames.emplace_back();
  if (!xsub_.recv(frames.back(), zmq::recv_flags::dontwait)) return false;
  while (frames.back().more()) {
    frames.emplace_back();
    (void)xsub_.recv(frames.back());
  }
  if (!allowed(frames)) return true;
  for (size_t i = 0; i < frames.size(); ++i) {
    xpub_.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  ++stats_.forwarded;
  return true;
}

bool Forwarder::allowed(const std::vector<zmq::message_t>& frames) {
  std::string principal = security::authenticated_principal(frames[0]);
  std::string why;
  std::string target(frames[0].to_string_view().substr(0, 128));
  if (frames.size() != 2) {
    ++stats_.malformed;
    why = std::to_string(frames.size()) + " frames, not a topic and an envelope";
  } else if (auto ev = verify_event(frames[0].to_string_view(),
                                    {static_cast<const uint8_t*>(frames[1].data()), frames[1].size()});
             !ev) {
    ++stats_.malformed;
    why = "malformed: " + ev.status().message();
  } else {
    auto stream = ev->stream();
    auto at = stream.rfind('@');
    auto instance = at == std::string_view::npos ? std::string_view{} : stream.substr(at + 1);
    auto kind = security::principal_kind(principal);
    if ((kind == "service" || kind == "agent") && security::principal_name(principal) == instance) {
      if (ev->type() == fb::Payload::StreamHeartbeat && instance == audit_instance_) note_heartbeat(*ev, principal);
      return true;
    }
    ++stats_.forged;
    target = std::string(stream.substr(0, 128));
    why = "stream " + std::string(stream) + " is not " + (principal.empty() ? "an unknown key" : principal) + "'s";
  }
  note_refusal(principal, "Publish", target, why);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now - last_drop_log_ms_ >= 10'000) {
    last_drop_log_ms_ = now;
    spdlog::warn("bus: dropped a message from {} ({}); {} malformed and {} forged so far",
                 principal.empty() ? "?" : principal, why, stats_.malformed.load(), stats_.forged.load());
  }
  return false;
}

bool may_subscribe(std::string_view principal, std::string_view topic) {
  auto kind = security::principal_kind(principal);
  if (kind == "service" || kind == "agent") return true;
  if (kind != "user") return false;
  for (std::string_view open : {"job.state", "ops."}) {
    if (topic.substr(0, open.size()) == open) return true;
  }
  return false;
}

bool Forwarder::subscribe(const zmq::message_t& m) {
  const auto* d = static_cast<const char*>(m.data());
  if (m.size() < 1 || (d[0] != 0 && d[0] != 1)) return true;  // not a subscription: pass it on
  std::string_view topic(d + 1, m.size() - 1);
  if (d[0] == 0) {
    // Unsubscribing is always allowed; those XPUB makes itself when a
    // subscriber goes away carry no metadata (and no pipe to apply to).
    xpub_.set(zmq::sockopt::unsubscribe, topic);
    return true;
  }
  std::string principal = security::authenticated_principal(m);
  if (!may_subscribe(principal, topic)) {
    ++stats_.refused_subscriptions;
    note_refusal(principal, "Subscribe", std::string(topic.substr(0, 128)),
                 "users read job.state and ops.* only (the queue line)");
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch()).count();
    if (now - last_refusal_log_ms_ >= 10'000) {
      last_refusal_log_ms_ = now;
      spdlog::warn("bus: refused {}'s subscription to \"{}\" (users read job.state and ops.* only); {} so far",
                   principal.empty() ? "an unknown key" : principal, topic, stats_.refused_subscriptions.load());
    }
    return false;
  }
  xpub_.set(zmq::sockopt::subscribe, topic);
  return true;
}

void Forwarder::note_refusal(std::string principal, std::string action, std::string target, std::string why) {
  std::lock_guard lock(mu_);
  auto key = std::make_tuple(principal, action, target);
  if (auto it = refusals_.find(key); it != refusals_.end()) {
    ++it->second.count;
    return;
  }
  if (refusals_.size() >= 256) {
    // A flood of distinct targets: counted on one entry that says so.
    auto more = std::make_tuple(std::string(), std::string("Publish"), std::string("(more)"));
    auto [it, fresh] = refusals_.try_emplace(more, ForwarderRefusal{"", "Publish", "(more)",
                                                                    "more refusals than are listed one by one", 0});
    ++it->second.count;
    return;
  }
  refusals_.emplace(key, ForwarderRefusal{std::move(principal), std::move(action), std::move(target), std::move(why), 1});
}

std::vector<ForwarderRefusal> Forwarder::take_refusals() {
  std::lock_guard lock(mu_);
  std::vector<ForwarderRefusal> out;
  out.reserve(refusals_.size());
  for (auto& [key, r] : refusals_) out.push_back(std::move(r));
  refusals_.clear();
  return out;
}

void Forwarder::note_heartbeat(const Event& ev, std::string_view principal) {
  auto* hb = ev.as<fb::StreamHeartbeat>();
  if (!hb || !hb->replay_endpoint() || principal != "service:" + audit_instance_) return;
  std::lock_guard lock(mu_);
  if (audit_endpoint_ != hb->replay_endpoint()->string_view()) {
    audit_endpoint_ = hb->replay_endpoint()->str();
    spdlog::info("bus: refusals go to {}'s audit trail at {}", principal, audit_endpoint_);
  }
}

std::string Forwarder::audit_endpoint() const {
  std::lock_guard lock(mu_);
  return audit_endpoint_;
}

void Forwarder::stop() {
  zmq::socket_t s(ctx_, zmq::socket_type::pair);
  s.set(zmq::sockopt::linger, 1000);
  s.connect(control_endpoint_);
  s.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
}

}  // namespace trainyard::bus
