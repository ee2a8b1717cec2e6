#include "bus_feed.h"

#include <spdlog/spdlog.h>

#include "bus/event.h"
#include "core/events.h"
#include "util/clock.h"

namespace trainyard::gateway {

BusFeed::BusFeed(zmq::context_t& ctx, std::vector<std::string> endpoints, EventHub& hub)
    : ctx_(ctx), endpoints_(std::move(endpoints)), hub_(hub) {}

BusFeed::~BusFeed() { stop(); }

void BusFeed::start() { thread_ = std::thread([this] { run(); }); }

void BusFeed::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void BusFeed::run() {
  // The socket is made, used and closed on this thread only.
  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(bus::kDefaultMaxMessageBytes));
  sub.set(zmq::sockopt::rcvhwm, 100'000);
  for (const char* p : {"job.", "node.", "lease.", "run.", "account.", "metric.", "ops.metrics."}) {
    sub.set(zmq::sockopt::subscribe, p);
  }
  for (const auto& e : endpoints_) {
    try {
      sub.connect(e);
    } catch (const zmq::error_t& err) {
      spdlog::error("bus: cannot connect to {}: {} (check bus.backend)", e, err.what());
    }
  }
  spdlog::info("bus: watching {} forwarder(s)", endpoints_.size());
  while (!stop_) {
    zmq::pollitem_t item{static_cast<void*>(sub), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    for (int i = 0; i < 1024; ++i) {
      zmq::message_t topic, body;
      if (!sub.recv(topic, zmq::recv_flags::dontwait)) break;
      if (!topic.more()) continue;
      if (!sub.recv(body, zmq::recv_flags::dontwait)) break;
      while (body.more()) {
        zmq::message_t extra;
        (void)sub.recv(extra);
      }
      handle(topic, body);
    }
  }
}

void BusFeed::handle(const zmq::message_t& topic_msg, const zmq::message_t& body) {
  std::string_view topic(static_cast<const char*>(topic_msg.data()), topic_msg.size());
  std::span<const uint8_t> bytes(static_cast<const uint8_t*>(body.data()), body.size());
  bus::Event e;
  std::string why;
  if (!bus::verify_event(topic, bytes, &e, &why)) {
    int64_t now = monotonic_ms();
    if (now - last_reject_log_ms_ > 10'000) {
      spdlog::warn("bus: dropped a message on '{}': {}", topic, why);
      last_reject_log_ms_ = now;
    }
    return;
  }
  // Two forwarders deliver everything twice, so "not newer" means "seen";
  // except seq 1, which is a publisher that started over with fresh data.
  auto it = last_seq_.find(e.stream());
  if (it != last_seq_.end() && e.seq() <= it->second && !(e.seq() == 1 && it->second > 1)) return;
  last_seq_[std::string(e.stream())] = e.seq();
  ++hub_.events_seen;

  if (e.type() == fb::Payload::OpsMetrics) {
    auto* m = e.as<fb::OpsMetrics>();
    OpsReport r;
    r.service = m->service() ? m->service()->str() : "";
    r.instance = m->instance() ? m->instance()->str() : "";
    if (r.service.empty()) {
      auto t = std::string(topic);
      r.service = t.substr(t.rfind('.') + 1);
    }
    if (m->gauges()) {
      for (const auto* g : *m->gauges()) {
        if (g->name()) r.gauges.emplace_back(g->name()->str(), g->value());
      }
    }
    hub_.set_ops(std::move(r), monotonic_ms());
    return;
  }
  if (e.type() == fb::Payload::MetricBatch) {
    auto* m = e.as<fb::MetricBatch>();
    if (m->points()) hub_.metric_points_seen += m->points()->size();
  }
  if (auto v = view_of(e)) hub_.push(*v);
}

}  // namespace trainyard::gateway
