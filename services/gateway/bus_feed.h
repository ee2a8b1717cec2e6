// The gateway's view of the bus: one thread with a plain SUB socket on the
// forwarders' backends, watching job., node., lease., run., account., metric.
// and ops.metrics.; every message passes verify_event, duplicates from two
// forwarders are dropped by (stream, seq), and views go to the EventHub.
// Deliberately not durable: the gateway shows live events and keeps no
// state; everything a page needs after a reload comes from the services.
// Job events and the scheduler's stream heartbeats (ops.stream.job.*) also
// keep the JobCache, which learns from the feed when events were lost.
// Nothing a message holds can stop the thread: a message that fails is
// logged (rate-limited) and skipped.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "event_hub.h"
#include "job_cache.h"

namespace trainyard::gateway {

class BusFeed {
 public:
  BusFeed(zmq::context_t& ctx, std::vector<std::string> endpoints, EventHub& hub, JobCache* jobs = nullptr);
  ~BusFeed();  // stops and joins the thread
  BusFeed(const BusFeed&) = delete;
  BusFeed& operator=(const BusFeed&) = delete;

  void start();
  void stop();

 private:
  void run();
  void receive(zmq::socket_t& sub);
  void handle(const zmq::message_t& topic, const zmq::message_t& body);
  void heartbeat(const bus::Event& e);
  // false: not newer than what was seen (two forwarders deliver it twice)
  bool is_new(const bus::Event& e);
  void log_rejected(std::string_view topic, const std::string& why);

  zmq::context_t& ctx_;
  std::vector<std::string> endpoints_;
  EventHub& hub_;
  JobCache* jobs_;
  struct Seen {
    uint64_t seq = 0;
    int64_t at_ms = 0;
    uint64_t epoch = 0;  // the publisher's incarnation (Envelope.epoch)
  };
  std::map<std::string, Seen, std::less<>> last_seq_;  // pruned of streams silent for long
  int64_t last_prune_ms_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t last_reject_log_ms_ = 0;
};

}  // namespace trainyard::gateway
