// The bus forwarder: a stateless XSUB/XPUB proxy. Publishers connect to its
// frontend (XSUB), subscribers to its backend (XPUB). It keeps nothing, so it
// can be killed and restarted (or run twice) without losing events: the
// durable publishers and subscribers repair what it dropped.
//
// Under CURVE (a security::Site installed) it also checks every published
// message: it must be a well-formed event whose stream belongs to the
// publisher's principal ("*.@X" only from service:X or agent:X; users
// never publish). Anything else is dropped, counted and logged, and kept
// for the audit trail (take_refusals): the forwarder has no store, so
// trainyard-bus hands them to billing, whose endpoint it learns from
// billing's own heartbeats (the forwarder subscribes to the heartbeats of
// the ops.* streams, which every service has, for that).
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <zmq.hpp>

namespace trainyard::bus {

struct Event;

struct ForwarderOptions {
  std::string frontend = "tcp://127.0.0.1:*";  // XSUB: publishers connect here
  std::string backend = "tcp://127.0.0.1:*";   // XPUB: subscribers connect here
  int hwm = 1'000'000;
  size_t max_message_bytes = 64u << 20;
  // Under CURVE, check each publication's stream against its publisher
  // (off only for bench-bus's raw-CURVE baseline, which sends no events).
  bool check_streams = true;
  // The instance that keeps the audit trail (billing.instance): its
  // heartbeats, published under its key, advertise its endpoint.
  std::string audit_instance = "billing";
};

// A message or subscription the forwarder refused, for the audit trail.
struct ForwarderRefusal {
  std::string principal;  // "" : no CURVE identity
  std::string action;     // "Publish", "Subscribe"
  std::string target;     // the stream (or topic) it named
  std::string why;
  uint64_t count = 1;     // refusals of this (principal, action, target) since the last take
};

struct ForwarderStats {
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> malformed{0};  // not a verifiable event
  std::atomic<uint64_t> forged{0};     // a stream its publisher does not own
  std::atomic<uint64_t> refused_subscriptions{0};  // a user asking for more than the queue line
};

// Under CURVE a user's key may subscribe only to what everyone may see: the
// queue line (job.state, whose events carry no command, environment or
// files) and the streams' heartbeats and health (ops.*). job.submitted
// (whole specs), run.*, metric.*, lease.*, usage.*, audit.* and the rest
// are for services and agents.
bool may_subscribe(std::string_view principal, std::string_view topic);

class Forwarder {
 public:
  // Binds both sockets (throws zmq::error_t if it cannot).
  Forwarder(zmq::context_t& ctx, const ForwarderOptions& options);
  const std::string& frontend() const { return frontend_; }
  const std::string& backend() const { return backend_; }
  // Forwards until stop() is called from any thread (or the context ends).
  void run();
  void stop();
  const ForwarderStats& stats() const { return stats_; }
  // The refusals since the last call, one entry per principal, action and
  // target (at most 256; the rest are counted in the last entry).
  std::vector<ForwarderRefusal> take_refusals();
  // The audit keeper's endpoint, as its own heartbeats advertise it ("" until seen).
  std::string audit_endpoint() const;

 private:
  zmq::context_t& ctx_;
  zmq::socket_t xsub_;
  zmq::socket_t xpub_;
  zmq::socket_t control_;
  std::string control_endpoint_;
  std::string frontend_;
  std::string backend_;
  ForwarderStats stats_;
  bool check_streams_ = true;
  int64_t last_drop_log_ms_ = 0;
  std::string audit_instance_;
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, ForwarderRefusal> refusals_;  // guarded by mu_
  std::string audit_endpoint_;                                                           // guarded by mu_
  void note_refusal(std::string principal, std::string action, std::string target, std::string why);
  void note_heartbeat(const Event& ev, std::string_view principal);

  void run_checked();
  bool forward_one();
  bool allowed(const std::vector<zmq::message_t>& frames);
  // Applies a subscription (XPUB_MANUAL) if its subscriber may have it.
  bool subscribe(const zmq::message_t& m);
  int64_t last_refusal_log_ms_ = 0;
};

}  // namespace trainyard::bus
