#include "bus/subscriber.h"


#include <spdlog/spdlog.h>

#include "rpc/endpoint.h"
#include "security/site.h"
#include "storage/keys.h"
#include "util/clock.h"
#include "util/runtime.h"

namespace trainyard::bus {

namespace {
// Marks a cursor row that carries an epoch (rows from before epochs do not).
constexpr std::string_view kEpochMark = "\x01" "E";  // (two literals: E would continue the hex escape)
}  // namespace

using storage::Key;
using storage::KeyReader;

Subscriber::Subscriber(zmq::context_t& ctx, storage::Store& store, SubscriberOptions options, Handler handler)
    : ctx_(ctx),
      store_(store),
      cursors_cf_(store.cf("cursors")),
      options_(std::move(options)),
      handler_(std::move(handler)),
      socket_(ctx, zmq::socket_type::sub) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::rcvhwm, options_.rcvhwm);
  // No ZMQ_MAXMSGSIZE here: ZeroMQ would drop the connection to the
  // forwarder (and every event queued on it) for one oversized message. The
  // forwarder's XSUB bounds what enters the bus; poll() counts the rest.
  // Subscriptions travel upstream as messages: with the default send limit
  // (1000) ZeroMQ silently drops those past it, so many prefixes would miss
  // events. No limit: there are as many as the caller asked for.
  socket_.set(zmq::sockopt::sndhwm, 0);
  for (auto& p : options_.prefixes) {
    socket_.set(zmq::sockopt::subscribe, p);
    socket_.set(zmq::sockopt::subscribe, std::string(kHeartbeatPrefix) + p);
  }
  if (auto st = security::secure_client(socket_, kBusPrincipal); !st) throw std::runtime_error("bus: " + st.message());
  for (auto& ep : options_.bus_endpoints) socket_.connect(ep);
  // cursor row: key stream -> seq(8) kEpochMark epoch(8) endpoint; rows
  // from before epochs hold seq(8) endpoint (an endpoint never starts with
  // the mark) and adopt the first epoch they see.
  value_or_throw(store_.scan(cursors_cf_, "", "", [&](std::string_view k, std::string_view v) {
    if (v.size() < 8) return true;
    StreamState st;
    st.cursor = KeyReader(v).u64();
    std::string_view rest = v.substr(8);
    if (rest.size() >= kEpochMark.size() + 8 && rest.substr(0, kEpochMark.size()) == kEpochMark) {
      st.epoch = KeyReader(rest.substr(kEpochMark.size())).u64();
      rest = rest.substr(kEpochMark.size() + 8);
    }
    st.endpoint = std::string(rest);
    if (!st.endpoint.empty() && !rpc::check_connect_endpoint(st.endpoint).ok()) {
      // Stored by an older build that did not check heartbeats: forget it
      // rather than fail every start; the next heartbeat tells the truth.
      spdlog::warn("{}: ignoring the stored replay endpoint of {}: not a valid endpoint", options_.name, k);
      st.endpoint.clear();
    }
    if (tracks(k)) streams_.emplace(std::string(k), std::move(st));
    return true;
  }));
}

Subscriber::~Subscriber() = default;

void Subscriber::attach(Runtime& runtime) {
  // Catch up from every cursor we have: the publisher may have moved on
  // while we were down.
  for (auto& [name, st] : streams_) {
    if (!st.endpoint.empty()) st.wanted = std::max(st.wanted, st.cursor + 1);
  }
  runtime_ = &runtime;
  runtime.watch(socket_, [this, &runtime] { poll(runtime.batch()); });
  runtime.each_iteration([this] { return work(); });
}

bool Subscriber::tracks(std::string_view stream) const {
  auto prefix = stream_prefix(stream);
  for (auto& p : options_.prefixes) {
    if (prefix.substr(0, p.size()) == p) return true;
  }
  return false;
}

Subscriber::StreamState& Subscriber::state(std::string_view stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) it = streams_.emplace(std::string(stream), StreamState{}).first;
  return it->second;
}

uint64_t Subscriber::cursor(std::string_view stream) const {
  auto it = streams_.find(stream);
  return it == streams_.end() ? 0 : it->second.cursor;
}

std::map<std::string, uint64_t> Subscriber::cursors() const {
  std::map<std::string, uint64_t> out;
  for (auto& [k, v] : streams_) out[k] = v.cursor;
  return out;
}

bool Subscriber::caught_up() const {
  for (auto& [k, v] : streams_) {
    if (v.wanted > v.cursor) return false;
  }
  return true;
}

size_t Subscriber::poll(storage::Batch& batch) {
  size_t n = 0;
  while (n < options_.max_batch) {
    zmq::message_t topic;
    if (!socket_.recv(topic, zmq::recv_flags::dontwait)) break;
    ++n;
    ++stats_.received;
    if (!topic.more()) {
      ++stats_.rejected;
      spdlog::warn("{}: dropped a one-frame message on topic '{}'", options_.name, topic.to_string_view().substr(0, 64));
      continue;
    }
    zmq::message_t body;
    (void)socket_.recv(body);
    size_t frames = 2;
    for (bool more = body.more(); more; ++frames) {
      zmq::message_t x;
      (void)socket_.recv(x);
      more = x.more();
    }
    if (frames > 2) {
      ++stats_.rejected;
      spdlog::warn("{}: dropped a message of {} frames on topic '{}'", options_.name, frames,
                   topic.to_string_view().substr(0, 64));
      continue;
    }
    if (body.size() > options_.max_message_bytes) {
      ++stats_.rejected;
      spdlog::warn("{}: dropped an oversized message ({} bytes, limit {}) on topic '{}'", options_.name, body.size(),
                   options_.max_message_bytes, topic.to_string_view().substr(0, 64));
      continue;
    }
    handle(topic.to_string_view(), {static_cast<const uint8_t*>(body.data()), body.size()}, batch);
  }
  persist(batch);
  return n;
}

void Subscriber::reject(std::string_view topic, size_t bytes, std::string_view why) {
  ++stats_.rejected;
  int64_t now = monotonic_ms();
  if (now - last_reject_log_ms_ > 1000) {  // log once a second at most; the counter has them all
    spdlog::warn("{}: rejected a message on topic '{}' ({} bytes): {} ({} rejected so far)", options_.name,
                 topic.substr(0, 64), bytes, why, stats_.rejected);
    last_reject_log_ms_ = now;
  }
}

void Subscriber::handle(std::string_view topic, std::span<const uint8_t> bytes, storage::Batch& batch) {
  auto checked = verify_event(topic, bytes);
  if (!checked) return reject(topic, bytes.size(), checked.status().message());
  const Event& e = *checked;
  StreamState* cached = (last_state_ && e.stream() == last_stream_) ? last_state_ : nullptr;
  if (!cached) {
    if (!tracks(e.stream())) return;
    if (streams_.size() >= options_.max_streams && streams_.find(e.stream()) == streams_.end())
      return reject(topic, bytes.size(), "a new stream past the limit of " + std::to_string(options_.max_streams));
    cached = &state(e.stream());  // std::map nodes never move
    last_stream_ = std::string(e.stream());
    last_state_ = cached;
  }
  auto& st = *cached;
  if (!same_incarnation(e, st)) {
    ++stats_.duplicates;
    return;
  }
  if (e.type() == fb::Payload::StreamHeartbeat) {
    auto* hb = e.as<fb::StreamHeartbeat>();
    if (st.failures > 0) {
      // It is alive: whatever failed, ask again at the normal pace.
      st.failures = 0;
      st.retry_at_ms = std::min(st.retry_at_ms, monotonic_ms() + options_.retry_ms);
    }
    if (hb->replay_endpoint() && hb->replay_endpoint()->string_view() != st.endpoint) {
      auto valid = rpc::check_connect_endpoint(hb->replay_endpoint()->string_view());
      if (!valid.ok()) return reject(topic, bytes.size(), "heartbeat's replay endpoint: " + valid.message());
      st.endpoint = hb->replay_endpoint()->str();
      st.dirty = true;
    }
    if (hb->last_seq() > st.cursor && hb->last_seq() > st.wanted) {
      st.wanted = hb->last_seq();  // events we never saw: ask for them
      ++stats_.gaps;
    }
    return;
  }
  if (e.seq() <= st.cursor) {
    ++stats_.duplicates;
    return;
  }
  if (e.seq() > st.cursor + 1) {
    // A gap: this event and what is missing before it come by replay.
    if (e.seq() > st.wanted) {
      if (st.wanted <= st.cursor) ++stats_.gaps;
      st.wanted = e.seq();
    }
    return;
  }
  apply(e, st, batch);
}

bool Subscriber::same_incarnation(const Event& e, StreamState& st) {
  uint64_t epoch = e.envelope->epoch();
  if (epoch == 0 || epoch == st.epoch) return true;  // 0: a publisher from before epochs
  if (st.epoch == 0) {
    st.epoch = epoch;  // a new stream, or a cursor from before epochs: adopt it
    st.dirty = true;
    return true;
  }
  if (epoch < st.epoch) return false;
  spdlog::info("{}: {} started over (epoch {} after {}, at seq {}): following it from seq 1", options_.name,
               e.stream(), epoch, st.epoch, st.cursor);
  ++stats_.new_epochs;
  st.epoch = epoch;
  st.cursor = 0;
  st.wanted = 0;
  st.dirty = true;
  return true;
}

void Subscriber::apply(const Event& e, StreamState& st, storage::Batch& batch) {
  try {
    handler_(e, batch);
  } catch (const std::exception& ex) {
    // A handler bug must not stop the service, nor block the stream by
    // failing on every replay of the same event: log it and move on.
    ++stats_.handler_failures;
    spdlog::error("{}: handling {} event {} of {} failed, skipped: {}", options_.name, fb::EnumNamePayload(e.type()),
                  e.seq(), e.stream(), ex.what());
  }
  st.cursor = e.seq();
  st.dirty = true;
  ++stats_.applied;
}

void Subscriber::persist(storage::Batch& batch) {
  for (auto& [name, st] : streams_) {
    if (!st.dirty) continue;
    std::string v = Key().u64(st.cursor).bytes();
    v.append(kEpochMark);
    v.append(Key().u64(st.epoch).bytes());
    v.append(st.endpoint);
    batch.put(cursors_cf_, name, v);
    st.dirty = false;
  }
}

bool Subscriber::work() {
  if (!runtime_) return false;
  int64_t now = monotonic_ms();
  for (auto& [endpoint, rc] : replay_clients_) rc.client->expire();
  close_unused_replay_clients(now);
  for (auto& [name, st] : streams_) {
    if (st.wanted > st.cursor && !st.in_flight && !st.endpoint.empty() && now >= st.retry_at_ms) {
      request_replay(name, st);
    }
  }
  return false;
}

void Subscriber::request_replay(const std::string& stream, StreamState& st) {
  if (!replay_clients_.contains(st.endpoint) && replay_clients_.size() >= options_.max_replay_endpoints) {
    // Forged heartbeats naming many endpoints must not use up the context's
    // sockets: a real publisher past the limit waits and is asked later.
    ++stats_.replay_failures;
    st.retry_at_ms = monotonic_ms() + options_.retry_ms;
    endpoint_waits_ = true;
    return;
  }
  auto& rc = replay_clients_[st.endpoint];
  rc.last_used_ms = monotonic_ms();
  auto& client = rc.client;
  if (!client) {
    // Under CURVE the publisher must prove it holds the key of the stream's
    // instance (the forwarder let only that principal advertise it).
    std::string server = "service:" + std::string(stream.substr(stream.rfind('@') + 1));
    if (auto* site = security::Site::current()) server = site->publisher(stream.substr(stream.rfind('@') + 1)).value_or(server);
    client = std::make_unique<rpc::AsyncClient>(ctx_, "publisher of " + stream, st.endpoint, options_.replay_timeout_ms,
                                                server);
    auto* c = client.get();
    runtime_->watch(c->socket(), [c] { c->poll_in(); });
  }
  uint64_t from = st.cursor + 1;
  st.in_flight = true;
  client->send(
      fb::RequestBody::ReplayRequest,
      [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateReplayRequestDirect(b, stream.c_str(), from, 4096).Union(); },
      [this, stream](Result<rpc::Reply> reply) { on_replay(stream, std::move(reply)); });
}

void Subscriber::replay_failed(const std::string& stream, StreamState& st, std::string_view why) {
  ++stats_.replay_failures;
  int64_t wait = options_.retry_ms;
  for (uint32_t i = 0; i < st.failures && wait < options_.retry_max_ms; ++i) wait *= 2;
  wait = std::min(wait, std::max(options_.retry_max_ms, options_.retry_ms));
  ++st.failures;
  st.retry_at_ms = monotonic_ms() + wait;
  // Once per run of failures (then quietly: a gone publisher is not news every minute).
  if (st.failures == 1) {
    spdlog::warn(
        "{}: replay of {} from seq {} failed: {} (asking again in {} ms, then less often while it sends no "
        "heartbeat)",
        options_.name, stream, st.cursor + 1, why, wait);
  } else {
    spdlog::debug("{}: replay of {} failed again ({} in a row): {}; next in {} ms", options_.name, stream, st.failures,
                  why, wait);
  }
}

void Subscriber::close_unused_replay_clients(int64_t now_ms) {
  // Only from work(): never inside a replay client's own handler.
  bool full = endpoint_waits_ && replay_clients_.size() >= options_.max_replay_endpoints;
  endpoint_waits_ = false;
  for (auto it = replay_clients_.begin(); it != replay_clients_.end();) {
    auto& rc = it->second;
    bool unused = rc.client->in_flight() == 0 && (full || now_ms - rc.last_used_ms >= options_.replay_idle_close_ms);
    if (!unused) {
      ++it;
      continue;
    }
    runtime_->unwatch(rc.client->socket());
    it = replay_clients_.erase(it);
    ++stats_.replay_sockets_closed;
  }
}

void Subscriber::on_replay(const std::string& stream, Result<rpc::Reply> reply) {
  auto& st = state(stream);
  st.in_flight = false;
  auto& batch = runtime_->batch();
  if (!reply) return replay_failed(stream, st, reply.status().message());
  auto* rb = reply->body<fb::ReplayBatch>();
  if (!rb) return replay_failed(stream, st, "the reply is not a ReplayBatch");
  if (st.failures > 0) {
    spdlog::info("{}: replay of {} works again after {} failures", options_.name, stream, st.failures);
    st.failures = 0;
  }
  long applied = 0;
  if (rb->snapshot()) {
    ++stats_.snapshots;
    spdlog::info("{}: events of {} from seq {} were trimmed; loading a snapshot at seq {}", options_.name, stream,
                 st.cursor + 1, rb->snapshot_seq());
    if (snapshot_begin_) snapshot_begin_(stream, batch);
  }
  if (rb->events()) {
    for (auto* raw : *rb->events()) {
      if (apply_replayed(stream, st, *raw, *rb, batch)) ++applied;
    }
  }
  if (rb->snapshot()) {
    st.cursor = std::max(st.cursor, rb->snapshot_seq());
    st.dirty = true;
  }
  // The publisher has nothing beyond last_seq: we cannot want more than that.
  if (st.cursor >= rb->last_seq() && st.wanted > st.cursor) st.wanted = st.cursor;
  if (applied == 0 && st.wanted > st.cursor) {
    // Nothing came although we are behind (e.g. the publisher restarted and
    // has not re-read its outbox yet): wait before asking again.
    st.retry_at_ms = monotonic_ms() + options_.retry_ms;
  }
  persist(batch);
}

bool Subscriber::apply_replayed(const std::string& stream, StreamState& st, const fb::RawEvent& raw,
                                const fb::ReplayBatch& rb, storage::Batch& batch) {
  if (!raw.topic() || !raw.envelope()) return false;
  std::span<const uint8_t> bytes(raw.envelope()->data(), raw.envelope()->size());
  auto checked = verify_event(raw.topic()->string_view(), bytes);
  // A publisher replays only events it has shown (seq <= its last): a
  // cursor never moves past what the publisher itself reports.
  std::string why = !checked                      ? checked.status().message()
                    : checked->stream() != stream ? "event of another stream"
                    : !rb.snapshot() && checked->seq() > rb.last_seq() ? "seq past the publisher's last"
                                                                       : "";
  if (!why.empty()) {
    ++stats_.rejected;
    spdlog::warn("{}: rejected a replayed event of {}: {}", options_.name, stream, why);
    return false;
  }
  const Event& e = *checked;
  if (!same_incarnation(e, st)) return false;  // the previous incarnation's events
  if (rb.snapshot()) {
    try {
      handler_(e, batch);
    } catch (const std::exception& ex) {
      ++stats_.handler_failures;
      spdlog::error("{}: applying a snapshot event of {} failed, skipped: {}", options_.name, stream, ex.what());
    }
    return true;
  }
  if (e.seq() <= st.cursor) return false;
  if (e.seq() > st.cursor + 1) {
    // Trimmed away and no snapshot offered: these events are gone for us.
    spdlog::error("{}: events {}..{} of {} are no longer in its outbox; skipping them", options_.name, st.cursor + 1,
                  e.seq() - 1, stream);
    st.cursor = e.seq() - 1;
  }
  apply(e, st, batch);
  ++stats_.replayed;
  return true;
}

}  // namespace trainyard::bus
