// The gateway's view of the bus: one thread with a plain SUB socket on the
// forwarders' backends, watching job., node., lease., run., account., metric.
// and ops.metrics.; every message passes verify_event, duplicates from two
// forwarders are dropped by (stream, seq), and views go to the EventHub.
// Deliberately not durable: the gateway shows live events and keeps no
// state; everything a page needs after a reload comes from the services.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "event_hub.h"

namespace trainyard::gateway {

class BusFeed {
 public:
  BusFeed(zmq::context_t& ctx, std::vector<std::string> endpoints, EventHub& hub);
  ~BusFeed();  // stops and joins the thread
  BusFeed(const BusFeed&) = delete;
  BusFeed& operator=(const BusFeed&) = delete;

  void start();
  void stop();

 private:
  void run();
  void handle(const zmq::message_t& topic, const zmq::message_t& body);

  zmq::context_t& ctx_;
  std::vector<std::string> endpoints_;
  EventHub& hub_;
  std::map<std::string, uint64_t, std::less<>> last_seq_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int64_t last_reject_log_ms_ = 0;
};

}  // namespace trainyard::gateway
