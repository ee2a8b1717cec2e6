#include "bus_feed.h"


#include <spdlog/spdlog.h>

#include "bus/event.h"
#include "security/site.h"
#include "core/events.h"
#include "util/clock.h"

namespace trainyard::gateway {

namespace {

// A stream not heard of for this long leaves the dedup table (forged or
// retired stream names must not grow it forever).
constexpr int64_t kForgetStreamMs = 10 * 60 * 1000;
constexpr std::string_view kJobHeartbeats = "ops.stream.job.";

}  // namespace

BusFeed::BusFeed(zmq::context_t& ctx, std::vector<std::string> endpoints, EventHub& hub, JobCache* jobs)
    : ctx_(ctx), endpoints_(std::move(endpoints)), hub_(hub), jobs_(jobs) {}

BusFeed::~BusFeed() { stop(); }

void BusFeed::start() { thread_ = std::thread([this] { run(); }); }

void BusFeed::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void BusFeed::run() {
  try {
    // The socket is made, used and closed on this thread only.
    zmq::socket_t sub(ctx_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(bus::kDefaultMaxMessageBytes));
    sub.set(zmq::sockopt::rcvhwm, 100'000);
    if (auto st = security::secure_client(sub, bus::kBusPrincipal); !st) throw std::runtime_error(st.message());
    for (const char* p : {"job.", "node.", "lease.", "run.", "account.", "metric.", "ops.metrics.", "ops.stream.job."}) {
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
      if (item.revents & ZMQ_POLLIN) receive(sub);
    }
  } catch (const std::exception& e) {
    // Only the socket itself can fail here (each message is guarded below);
    // the HTTP side keeps serving without live events.
    spdlog::error("bus: the feed stopped: {}; live events and job summaries from the bus are off", e.what());
  }
}

void BusFeed::receive(zmq::socket_t& sub) {
  for (int i = 0; i < 1024; ++i) {
    zmq::message_t topic, body;
    if (!sub.recv(topic, zmq::recv_flags::dontwait)) break;
    if (!topic.more()) continue;
    if (!sub.recv(body, zmq::recv_flags::dontwait)) break;
    while (body.more()) {
      zmq::message_t extra;
      (void)sub.recv(extra);
    }
    try {
      handle(topic, body);
    } catch (const std::exception& e) {
      log_rejected(std::string_view(static_cast<const char*>(topic.data()), topic.size()),
                   std::string("handling it failed: ") + e.what());
    }
  }
}

void BusFeed::log_rejected(std::string_view topic, const std::string& why) {
  ++hub_.events_rejected;
  int64_t now = monotonic_ms();
  if (now - last_reject_log_ms_ > 10'000) {
    // The topic comes off the wire: shown escaped, never as raw bytes.
    std::string shown;
    for (unsigned char c : topic.substr(0, 200)) {
      shown += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
    }
    spdlog::warn("bus: dropped a message on '{}': {} ({} dropped so far)", shown, why, hub_.events_rejected.load());
    last_reject_log_ms_ = now;
  }
}

bool BusFeed::is_new(const bus::Event& e) {
  int64_t now = monotonic_ms();
  if (now - last_prune_ms_ > 60'000) {
    std::erase_if(last_seq_, [&](const auto& kv) { return now - kv.second.at_ms > kForgetStreamMs; });
    last_prune_ms_ = now;
  }
  // Two forwarders deliver everything twice, so "not newer" means "seen";
  // except a newer epoch (or, from a publisher before epochs, seq 1): a
  // publisher that started over with fresh data.
  auto it = last_seq_.find(e.stream());
  uint64_t epoch = e.envelope->epoch();
  bool known = it != last_seq_.end();
  if (known && epoch != 0 && it->second.epoch != 0 && epoch < it->second.epoch) return false;  // the old one, late
  bool restart = known && ((epoch != 0 && it->second.epoch != 0 && epoch > it->second.epoch) ||
                           (epoch == 0 && e.seq() == 1 && it->second.seq > 1));
  if (known && e.seq() <= it->second.seq && !restart) return false;
  bool gap = known && !restart && e.seq() > it->second.seq + 1;
  if (jobs_ && (gap || restart) && e.topic.substr(0, 4) == "job.") jobs_->on_gap();
  last_seq_[std::string(e.stream())] = Seen{e.seq(), now, epoch};
  return true;
}

void BusFeed::heartbeat(const bus::Event& e) {
  const auto* hb = e.as<fb::StreamHeartbeat>();
  if (!jobs_ || !hb || !hb->stream()) return;
  auto stream = hb->stream()->string_view();
  if (stream.substr(0, 4) != "job.") return;
  auto it = last_seq_.find(stream);
  jobs_->on_heartbeat(stream, hb->last_seq(), it == last_seq_.end() ? 0 : it->second.seq);
}

void BusFeed::handle(const zmq::message_t& topic_msg, const zmq::message_t& body) {
  std::string_view topic(static_cast<const char*>(topic_msg.data()), topic_msg.size());
  std::span<const uint8_t> bytes(static_cast<const uint8_t*>(body.data()), body.size());
  auto checked = bus::verify_event(topic, bytes);
  if (!checked) return log_rejected(topic, checked.status().message());
  const bus::Event& e = *checked;
  if (topic.substr(0, kJobHeartbeats.size()) == kJobHeartbeats) {
    if (e.type() == fb::Payload::StreamHeartbeat) heartbeat(e);
    return;
  }
  if (!is_new(e)) return;
  ++hub_.events_seen;

  if (e.type() == fb::Payload::OpsMetrics) {
    const auto* m = e.as<fb::OpsMetrics>();
    if (!m) return log_rejected(topic, "an OpsMetrics event without its payload");
    OpsReport r;
    r.service = m->service() ? m->service()->str() : "";
    r.instance = m->instance() ? m->instance()->str() : "";
    if (r.service.empty()) {
      auto t = std::string(topic);
      r.service = t.substr(t.rfind('.') + 1);
    }
    if (m->gauges()) {
      for (const auto* g : *m->gauges()) {
        if (g && g->name()) r.gauges.emplace_back(g->name()->str(), g->value());
      }
    }
    hub_.set_ops(std::move(r), monotonic_ms());
    return;
  }
  if (e.type() == fb::Payload::MetricBatch) {
    const auto* m = e.as<fb::MetricBatch>();
    if (m && m->points()) hub_.metric_points_seen += m->points()->size();
  }
  if (jobs_) jobs_->on_event(e);
  if (auto v = view_of(e)) hub_.push(*v);
}

}  // namespace trainyard::gateway
