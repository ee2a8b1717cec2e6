#include "bus/publisher.h"


#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "bus/event.h"
#include "security/site.h"
#include "storage/keys.h"
#include "util/runtime.h"

namespace trainyard::bus {

using storage::Key;
using storage::KeyReader;

std::string reachable_endpoint(const std::string& endpoint) {
  for (std::string wildcard : {"tcp://0.0.0.0:", "tcp://*:"}) {
    if (endpoint.rfind(wildcard, 0) == 0) {
      char host[256] = {0};
      if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) return endpoint;
      return "tcp://" + std::string(host) + ":" + endpoint.substr(wildcard.size());
    }
  }
  return endpoint;
}

std::string encode_outbox_value(std::string_view topic, std::string_view envelope) {
  std::string v;
  v.reserve(4 + topic.size() + envelope.size());
  v.append(Key().u32(static_cast<uint32_t>(topic.size())).bytes());
  v.append(topic);
  v.append(envelope);
  return v;
}

bool decode_outbox_value(std::string_view value, std::string_view* topic, std::string_view* envelope) {
  if (value.size() < 4) return false;
  uint32_t n = KeyReader(value).u32();
  if (value.size() < 4 + n) return false;
  *topic = value.substr(4, n);
  *envelope = value.substr(4 + n);
  return true;
}

namespace {

// One PUB socket per forwarder. Every forwarder holds the bus's key
// (service:bus): they are interchangeable and keep nothing.
std::vector<zmq::socket_t> connect_forwarders(zmq::context_t& ctx, const std::vector<std::string>& endpoints) {
  std::vector<zmq::socket_t> sockets;
  for (auto& ep : endpoints) {
    zmq::socket_t s(ctx, zmq::socket_type::pub);
    s.set(zmq::sockopt::linger, 2000);
    s.set(zmq::sockopt::sndhwm, 1'000'000);
    if (auto st = security::secure_client(s, kBusPrincipal); !st) throw std::runtime_error("bus: " + st.message());
    s.connect(ep);
    sockets.push_back(std::move(s));
  }
  return sockets;
}

}  // namespace

Publisher::Publisher(zmq::context_t& ctx, storage::Store& store, rpc::Server& replay, PublisherOptions options,
                     const Clock& clock)
    : store_(store),
      outbox_(store.cf("outbox")),
      streams_(store.cf("streams")),
      replay_(replay),
      options_(std::move(options)),
      clock_(clock) {
  advertised_ = options_.advertise.empty() ? reachable_endpoint(replay_.endpoint()) : options_.advertise;
  sockets_ = connect_forwarders(ctx, options_.bus_endpoints);
  restore_streams();
  queue_unpublished();
  replay_.on(fb::RequestBody::ReplayRequest, [this](const fb::Request& req, rpc::Responder& r) { on_replay(req, r); });
}

void Publisher::restore_streams() {
  // streams row: key stream -> last(8) published(8) epoch(8); rows from
  // before epochs (16 bytes) get one now, which their subscribers adopt.
  // It is written at once: an epoch that changed at every start would make
  // subscribers start over (and apply the outbox again).
  std::vector<std::string> epochless;
  value_or_throw(store_.scan(streams_, "", "", [&](std::string_view k, std::string_view v) {
    StreamState st;
    KeyReader r(v);
    st.last = r.u64();
    st.published = r.u64();
    if (v.size() >= 24) {
      st.epoch = r.u64();
    } else {
      st.epoch = new_epoch();
      epochless.push_back(std::string(k));
    }
    Key lo;
    lo.str(k).u64(0);
    std::string first_key;
    value_or_throw(
        store_.scan(outbox_, lo, storage::prefix_end(Key().str(k).bytes()), [&](std::string_view ok, std::string_view) {
          first_key = std::string(ok);
          return false;
        }));
    st.first = st.last + 1;
    if (!first_key.empty()) {
      KeyReader fr(first_key);
      fr.str();
      st.first = fr.u64();
    }
    streams_state_.emplace(std::string(k), st);
    return true;
  }));
  if (!epochless.empty()) {
    storage::Batch batch;
    for (auto& name : epochless) write_stream_row(batch, name, streams_state_.at(name));
    if (auto c = store_.commit(batch); !c) throw std::runtime_error("bus: cannot record stream epochs: " + c.message());
  }
}

void Publisher::queue_unpublished() {
  // What may not have left before a crash; duplicates are harmless
  // (subscribers skip seqs at or below their cursor).
  for (auto& entry : streams_state_) {
    const std::string& name = entry.first;
    auto& st = entry.second;  // (not a structured binding: the lambda below captures it)
    if (st.published >= st.last) continue;
    // (std::map nodes are stable: Pending may point at st.)
    Key lo;
    lo.str(name).u64(st.published + 1);
    value_or_throw(store_.scan(outbox_, lo, storage::prefix_end(Key().str(name).bytes()),
                               [&](std::string_view k, std::string_view v) {
                                 std::string_view topic, env;
                                 if (!decode_outbox_value(v, &topic, &env)) return true;
                                 KeyReader kr(k);
                                 kr.str();
                                 pending_.push_back(Pending{std::string(v), &st, kr.u64()});
                                 ++stats_.republished;
                                 return true;
                               }));
  }
  if (!pending_.empty()) {
    spdlog::info("publisher {}: republishing {} events committed before the last stop", options_.instance,
                 pending_.size());
  }
}

void Publisher::attach(Runtime& runtime) {
  runtime.before_commit([this, &runtime] { seal(runtime.batch()); });
  runtime.after_commit([this] { flush(); });
  runtime.every(options_.heartbeat_ms, [this] { heartbeat(); });
  runtime.every(options_.trim_every_ms, [this, &runtime] { trim(runtime.batch()); });
}

std::string Publisher::prefix_to_stream(std::string_view prefix) const {
  return stream_name(prefix, options_.instance);
}

void Publisher::write_stream_row(storage::Batch& batch, const std::string& stream, const StreamState& st) {
  batch.put(streams_, stream, Key().u64(st.last).u64(st.published).u64(st.epoch).bytes());
}

uint64_t Publisher::new_epoch() const { return static_cast<uint64_t>(std::max<int64_t>(1, clock_.now_ns())); }

uint64_t Publisher::append(storage::Batch& batch, std::string_view topic, fb::Payload type,
                           flatbuffers::Offset<void> payload) {
  return append_to(batch, family_prefix(topic), topic, type, payload);
}

uint64_t Publisher::append_to(storage::Batch& batch, std::string_view prefix, std::string_view topic,
                              fb::Payload type, flatbuffers::Offset<void> payload) {
  // Streams are few and long-lived: look up by prefix without building the
  // name on the hot path.
  StreamState* st = nullptr;
  const std::string* name = nullptr;
  if (last_prefix_ == prefix && last_stream_) {
    st = last_stream_;
    name = last_name_;
  } else {
    std::string stream = prefix_to_stream(prefix);
    auto it = streams_state_.find(stream);
    if (it == streams_state_.end()) {
      StreamState fresh;
      fresh.epoch = new_epoch();
      it = streams_state_.emplace(stream, fresh).first;
    }
    st = &it->second;
    name = &it->first;
    last_prefix_ = std::string(prefix);
    last_stream_ = st;
    last_name_ = name;
  }
  uint64_t seq = ++st->last;

  auto s = fbb_.CreateString(*name);
  fb::EnvelopeBuilder eb(fbb_);
  eb.add_stream(s);
  eb.add_seq(seq);
  eb.add_epoch(st->epoch);
  eb.add_time_ns(clock_.now_ns());
  eb.add_payload_type(type);
  eb.add_payload(payload);
  fb::FinishEnvelopeBuffer(fbb_, eb.Finish());
  std::string value = encode_outbox_value(
      topic, std::string_view(reinterpret_cast<const char*>(fbb_.GetBufferPointer()), fbb_.GetSize()));
  fbb_.Clear();

  batch.put(outbox_, Key().str(*name).u64(seq).bytes(), value);
  st->dirty = true;
  pending_.push_back(Pending{std::move(value), st, seq});
  ++stats_.appended;
  return seq;
}

void Publisher::seal(storage::Batch& batch) {
  for (auto& [name, st] : streams_state_) {
    if (!st.dirty) continue;
    // The published mark is the one before this batch's events: if we die
    // before flushing them, a restart republishes from there.
    write_stream_row(batch, name, st);
    st.dirty = false;
  }
}

void Publisher::send(std::string_view topic, std::string_view envelope) {
  for (auto& s : sockets_) {
    s.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    s.send(zmq::buffer(envelope), zmq::send_flags::dontwait);
  }
}

void Publisher::flush() {
  for (auto& p : pending_) {
    std::string_view topic, env;
    decode_outbox_value(p.value, &topic, &env);
    send(topic, env);
    if (p.seq > p.stream->published) p.stream->published = p.seq;
    ++stats_.published;
  }
  pending_.clear();
}

void Publisher::heartbeat() {
  for (auto& [name, st] : streams_state_) {
    auto s = env_fbb_.CreateString(name);
    auto ep = env_fbb_.CreateString(advertised_);
    auto hb = fb::CreateStreamHeartbeat(env_fbb_, s, st.published, st.first, ep);
    auto s2 = env_fbb_.CreateString(name);
    fb::EnvelopeBuilder eb(env_fbb_);
    eb.add_stream(s2);
    eb.add_seq(0);
    eb.add_epoch(st.epoch);
    eb.add_time_ns(clock_.now_ns());
    eb.add_payload_type(fb::Payload::StreamHeartbeat);
    eb.add_payload(hb.Union());
    fb::FinishEnvelopeBuffer(env_fbb_, eb.Finish());
    std::string env(reinterpret_cast<const char*>(env_fbb_.GetBufferPointer()), env_fbb_.GetSize());
    env_fbb_.Clear();
    send(std::string(kHeartbeatPrefix) + name, env);
  }
}

void Publisher::trim(storage::Batch& batch) {
  int64_t cutoff = clock_.now_ns() - options_.outbox_keep_age_s * 1'000'000'000;
  for (auto& [name, st] : streams_state_) {
    uint64_t keep_from = st.first;
    if (st.last >= options_.outbox_keep_events && st.last - options_.outbox_keep_events + 1 > keep_from) {
      keep_from = st.last - options_.outbox_keep_events + 1;
    }
    // Age: walk the oldest events (bounded per call) until one is new enough.
    Key lo;
    lo.str(name).u64(keep_from);
    size_t looked = 0;
    auto read = store_.scan(outbox_, lo, storage::prefix_end(Key().str(name).bytes()),
                            [&](std::string_view k, std::string_view v) {
                              std::string_view topic, env;
                              if (++looked > 10000 || !decode_outbox_value(v, &topic, &env)) return false;
                              auto* e = flatbuffers::GetRoot<fb::Envelope>(env.data());
                              if (e->time_ns() >= cutoff) return false;
                              KeyReader kr(k);
                              kr.str();
                              keep_from = kr.u64() + 1;
                              return true;
                            });
    // A failed read only trims less (keep_from stops where the read did).
    if (!read) spdlog::warn("publisher {}: trimming stream {}: {}", options_.instance, name, read.message());
    // Never trim what is not yet published.
    keep_from = std::min(keep_from, st.published + 1);
    if (keep_from > st.first) {
      batch.del_range(outbox_, Key().str(name).u64(st.first).bytes(), Key().str(name).u64(keep_from).bytes());
      stats_.trimmed += keep_from - st.first;
      st.first = keep_from;
    }
  }
}

uint64_t Publisher::last_seq(std::string_view stream) const {
  auto it = streams_state_.find(stream);
  return it == streams_state_.end() ? 0 : it->second.last;
}

void Publisher::on_replay(const fb::Request& req, rpc::Responder& r) {
  ++stats_.replay_requests;
  auto* q = req.body_as_ReplayRequest();
  if (!q->stream()) {
    r.error(Status::invalid("ReplayRequest.stream is missing"));
    return;
  }
  std::string stream = q->stream()->str();
  auto it = streams_state_.find(stream);
  if (it == streams_state_.end()) {
    r.error(Status::not_found("stream " + stream + " is not published here"));
    return;
  }
  auto& st = it->second;
  auto& b = r.builder();
  RawEvents events;
  uint64_t from = std::max<uint64_t>(q->from_seq(), 1);
  // The events asked for are trimmed: send the state as of the newest
  // published seq instead.
  bool snapshot = from < st.first && snapshot_;
  uint64_t snapshot_seq = 0;
  if (snapshot) {
    snapshot_seq = replay_snapshot(stream, st, b, events);
  } else {
    auto read = replay_outbox(stream, from, std::clamp<uint32_t>(q->max_events(), 1, 16384), b, events);
    if (!read) return r.error(read);
  }
  auto s = b.CreateString(stream);
  auto ev = b.CreateVector(events);
  auto batch = fb::CreateReplayBatch(b, s, ev, st.published, snapshot, snapshot_seq);
  r.ok(fb::ReplyBody::ReplayBatch, batch.Union());
}

uint64_t Publisher::replay_snapshot(const std::string& stream, const StreamState& st, flatbuffers::FlatBufferBuilder& b,
                                    RawEvents& events) {
  uint64_t snapshot_seq = st.published;
  ++stats_.snapshots;
  flatbuffers::FlatBufferBuilder sb;
  std::string prefix(stream_prefix(stream));
  snapshot_(prefix, sb, [&](std::string_view topic, fb::Payload type, flatbuffers::Offset<void> payload) {
    auto s = sb.CreateString(stream);
    fb::EnvelopeBuilder eb(sb);
    eb.add_stream(s);
    eb.add_seq(snapshot_seq == 0 ? 1 : snapshot_seq);
    eb.add_epoch(st.epoch);
    eb.add_time_ns(clock_.now_ns());
    eb.add_payload_type(type);
    eb.add_payload(payload);
    fb::FinishEnvelopeBuffer(sb, eb.Finish());
    auto t = b.CreateString(topic);
    auto e = b.CreateVector(sb.GetBufferPointer(), sb.GetSize());
    events.push_back(fb::CreateRawEvent(b, t, e));
    sb.Clear();
  });
  return snapshot_seq;
}

Status Publisher::replay_outbox(const std::string& stream, uint64_t from, uint32_t max,
                                flatbuffers::FlatBufferBuilder& b, RawEvents& events) {
  size_t bytes = 0;
  Key lo;
  lo.str(stream).u64(from);
  auto read = store_.scan(outbox_, lo, storage::prefix_end(Key().str(stream).bytes()),
                          [&](std::string_view, std::string_view v) {
                            std::string_view topic, env;
                            if (!decode_outbox_value(v, &topic, &env)) return true;
                            auto t = b.CreateString(topic);
                            auto e = b.CreateVector(reinterpret_cast<const uint8_t*>(env.data()), env.size());
                            events.push_back(fb::CreateRawEvent(b, t, e));
                            bytes += env.size();
                            return events.size() < max && bytes < (8u << 20);
                          });
  if (!read) return read;
  stats_.replayed += events.size();
  return Status::success();
}

void publish_ops_metrics(Publisher& publisher, storage::Batch& batch, const std::string& service,
                         const std::string& instance, const Gauges& gauges) {
  auto& b = publisher.builder();
  std::vector<flatbuffers::Offset<fb::Gauge>> g;
  g.reserve(gauges.size());
  for (auto& [name, v] : gauges) g.push_back(fb::CreateGaugeDirect(b, name.c_str(), v));
  auto ev = fb::CreateOpsMetricsDirect(b, service.c_str(), instance.c_str(), &g);
  publisher.append(batch, "ops.metrics." + service, fb::Payload::OpsMetrics, ev.Union());
}

}  // namespace trainyard::bus
