// The durable publisher: numbers each of its streams 1, 2, 3..., writes every
// event to a RocksDB outbox in the caller's WriteBatch (with the state change
// that caused it), publishes it after the commit, serves replay of the outbox
// on its ROUTER, and sends a heartbeat per stream every second.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <flatbuffers/flatbuffers.h>
#include <zmq.hpp>

#include "rpc/server.h"
#include "storage/store.h"
#include "trainyard/fb/bus_generated.h"
#include "util/clock.h"

namespace trainyard {
class Runtime;
}

namespace trainyard::bus {

struct PublisherOptions {
  std::string instance;                     // names this publisher's streams: "<prefix>@<instance>"
  std::vector<std::string> bus_endpoints;   // forwarders' XSUB endpoints (one or two)
  int64_t heartbeat_ms = 1000;
  uint64_t outbox_keep_events = 1'000'000;  // per stream; older ones are trimmed
  int64_t outbox_keep_age_s = 7 * 24 * 3600;
  int64_t trim_every_ms = 10'000;
  // The replay endpoint heartbeats advertise. Empty: the replay server's
  // bound endpoint, with a wildcard address (0.0.0.0) replaced by this
  // host's name so subscribers on other hosts can reach it.
  std::string advertise;
};

struct PublisherStats {
  uint64_t appended = 0;
  uint64_t published = 0;
  uint64_t republished = 0;   // sent again at start (unsent before a crash)
  uint64_t replay_requests = 0;
  uint64_t replayed = 0;
  uint64_t snapshots = 0;
  uint64_t trimmed = 0;
};

// Produces a snapshot of the publisher's current state for the stream with
// `prefix`, as events: call emit(topic, type, payload) for each, building
// payloads in `fbb`. Used when a subscriber asks for events already trimmed.
using EmitFn = std::function<void(std::string_view topic, fb::Payload type, flatbuffers::Offset<void> payload)>;
using SnapshotFn = std::function<void(std::string_view prefix, flatbuffers::FlatBufferBuilder& fbb, const EmitFn& emit)>;

class Publisher {
 public:
  // Column families the store must be opened with.
  static std::vector<std::string> column_families() { return {"outbox", "streams"}; }

  // Loads each stream's last seq, queues what was committed but perhaps not
  // published before a crash, and registers the Replay handler on `replay`
  // (whose endpoint heartbeats advertise).
  Publisher(zmq::context_t& ctx, storage::Store& store, rpc::Server& replay, PublisherOptions options,
            const Clock& clock);

  // Hooks the publisher into a service loop: flush after each commit,
  // heartbeats and outbox trimming on timers.
  void attach(Runtime& runtime);

  // Build the payload here, then call append() with its offset.
  flatbuffers::FlatBufferBuilder& builder() { return fbb_; }

  // Adds the event to `batch` (outbox + the stream's seq) and queues it for
  // flush(). The stream is "<family of topic>@<instance>" ("job.state" ->
  // "job.@sched"). Returns its seq.
  uint64_t append(storage::Batch& batch, std::string_view topic, fb::Payload type, flatbuffers::Offset<void> payload);
  // Same, on the stream of an explicit topic prefix (e.g. "lease.node-3.").
  uint64_t append_to(storage::Batch& batch, std::string_view prefix, std::string_view topic, fb::Payload type,
                     flatbuffers::Offset<void> payload);

  // Writes each changed stream's seq row into `batch`. Call once before the
  // batch holding appended events is committed (attach() does).
  void seal(storage::Batch& batch);
  // Sends every queued event. Call only after the batch holding them is
  // committed.
  void flush();
  // Sends one heartbeat per stream now.
  void heartbeat();
  // Deletes outbox events beyond the size and age limits.
  void trim(storage::Batch& batch);

  void set_snapshot(SnapshotFn fn) { snapshot_ = std::move(fn); }

  uint64_t last_seq(std::string_view stream) const;
  std::string stream_for(std::string_view prefix) const { return prefix_to_stream(prefix); }
  const std::string& replay_endpoint() const { return advertised_; }
  const PublisherStats& stats() const { return stats_; }

 private:
  struct StreamState {
    uint64_t last = 0;       // newest appended seq
    uint64_t published = 0;  // newest flushed seq
    uint64_t first = 1;      // oldest seq still in the outbox
    uint64_t epoch = 0;      // the stream's incarnation (Envelope.epoch)
    bool dirty = false;      // seq row not yet written to a batch
  };
  struct Pending {
    std::string value;       // the outbox value: topic length, topic, envelope
    StreamState* stream;
    uint64_t seq;
  };

  std::string prefix_to_stream(std::string_view prefix) const;
  uint64_t new_epoch() const;
  void write_stream_row(storage::Batch& batch, const std::string& stream, const StreamState& st);
  void send(std::string_view topic, std::string_view envelope);
  // At start: every stream's state from its row and its outbox (epochs
  // written for rows from before them), then what is still to publish.
  void restore_streams();
  void queue_unpublished();
  using RawEvents = std::vector<flatbuffers::Offset<fb::RawEvent>>;
  void on_replay(const fb::Request& req, rpc::Responder& r);
  // The state as of the newest published seq, as events (the seq they carry).
  uint64_t replay_snapshot(const std::string& stream, const StreamState& st, flatbuffers::FlatBufferBuilder& b,
                           RawEvents& events);
  // Outbox events from `from` on, at most `max` (and 8 MiB); a failed read
  // is returned (the replay request gets it).
  Status replay_outbox(const std::string& stream, uint64_t from, uint32_t max, flatbuffers::FlatBufferBuilder& b,
                       RawEvents& events);

  storage::Store& store_;
  storage::Cf outbox_;
  storage::Cf streams_;
  rpc::Server& replay_;
  PublisherOptions options_;
  const Clock& clock_;
  std::vector<zmq::socket_t> sockets_;
  flatbuffers::FlatBufferBuilder fbb_{1024};
  flatbuffers::FlatBufferBuilder env_fbb_{1024};
  std::map<std::string, StreamState, std::less<>> streams_state_;
  std::vector<Pending> pending_;
  std::string last_prefix_;             // append_to's cache of the last stream used
  StreamState* last_stream_ = nullptr;
  const std::string* last_name_ = nullptr;
  SnapshotFn snapshot_;
  PublisherStats stats_;
  std::string advertised_;
};

// `endpoint` with a wildcard host (tcp://0.0.0.0:P, tcp://*:P) replaced by
// this machine's host name: an address other hosts can connect to.
std::string reachable_endpoint(const std::string& endpoint);

// A service's gauges (name, value), in the order they are reported.
using Gauges = std::vector<std::pair<std::string, double>>;
// Appends ops.metrics.<service> from `instance` to `batch`: what the
// gateway's Prometheus /metrics exports, one gauge per name.
void publish_ops_metrics(Publisher& publisher, storage::Batch& batch, const std::string& service,
                         const std::string& instance, const Gauges& gauges);

// Outbox row value: u32 topic length, topic, envelope bytes.
std::string encode_outbox_value(std::string_view topic, std::string_view envelope);
bool decode_outbox_value(std::string_view value, std::string_view* topic, std::string_view* envelope);

}  // namespace trainyard::bus
