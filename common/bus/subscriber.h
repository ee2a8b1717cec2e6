// The durable subscriber: applies every event of the streams under its topic
// prefixes exactly once. Its cursors (stream -> last applied seq) are written
// in the same WriteBatch as the state changes the events cause; duplicates
// are skipped; a gap, or a heartbeat showing events it never saw, is filled
// by asking the publisher's ROUTER to replay; on start it replays from every
// cursor it has.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "bus/event.h"
#include "rpc/async_client.h"
#include "storage/store.h"

namespace trainyard {
class Runtime;
}

namespace trainyard::bus {

struct SubscriberOptions {
  std::string name;                        // for logs ("billing")
  std::vector<std::string> bus_endpoints;  // forwarders' XPUB endpoints (one or two)
  std::vector<std::string> prefixes;       // topic prefixes, each ending in '.' ("job.", "lease.node-3.")
  size_t max_batch = 8192;                 // events applied per loop iteration
  int replay_timeout_ms = 2000;
  // The wait before asking an unreachable publisher again, doubled after
  // each failure in a row up to retry_max_ms while its stream sends no
  // heartbeat (a released cloud machine's stream is asked at each start and
  // never answers; a live publisher heartbeats every second, which brings
  // the wait back to retry_ms).
  int64_t retry_ms = 1000;
  int64_t retry_max_ms = 60'000;
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  int rcvhwm = 1'000'000;                  // messages queued before ZeroMQ drops (gaps are replayed)
  size_t max_streams = 100'000;            // streams tracked; events of further new streams are refused
  // Publishers' endpoints asked for replays (one socket each; ZeroMQ's
  // default context holds 1023 sockets): past it, new endpoints wait.
  size_t max_replay_endpoints = 768;
  // A replay socket unused this long is closed (each rented machine has an
  // endpoint of its own: sockets to past ones must not pile up). At
  // max_replay_endpoints, unused ones are closed at once for a new endpoint.
  int64_t replay_idle_close_ms = 60'000;
};

struct SubscriberStats {
  uint64_t received = 0;
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  uint64_t gaps = 0;
  uint64_t replayed = 0;
  uint64_t rejected = 0;     // garbage, truncated, wrong type, oversized
  uint64_t snapshots = 0;
  uint64_t new_epochs = 0;   // publishers seen starting over (their cursors reset)
  uint64_t replay_failures = 0;
  uint64_t handler_failures = 0;  // events whose handler threw: logged, skipped
  uint64_t replay_sockets_closed = 0;  // replay sockets closed unused so far
};

class Subscriber {
 public:
  // Applies one event: change state and write it into `batch`.
  using Handler = std::function<void(const Event& event, storage::Batch& batch)>;
  // Called before a snapshot of `stream` is applied: forget what that stream
  // had built up (its events follow through the Handler).
  using SnapshotBegin = std::function<void(std::string_view stream, storage::Batch& batch)>;

  static std::vector<std::string> column_families() { return {"cursors"}; }

  Subscriber(zmq::context_t& ctx, storage::Store& store, SubscriberOptions options, Handler handler);
  ~Subscriber();

  void on_snapshot(SnapshotBegin fn) { snapshot_begin_ = std::move(fn); }

  // Hooks into a service loop: reads the socket, and does replay work each
  // iteration. Call once; then replays from every stored cursor.
  void attach(Runtime& runtime);

  // Reads up to max_batch waiting messages and applies them into `batch`.
  // Returns the number read.
  size_t poll(storage::Batch& batch);
  // Asks publishers to replay what is missing. Replays are asynchronous: a
  // dead publisher never blocks the loop; its replies are applied into the
  // runtime's batch when they arrive. Returns false (nothing to spin on).
  bool work();

  zmq::socket_t& socket() { return socket_; }
  uint64_t cursor(std::string_view stream) const;
  std::map<std::string, uint64_t> cursors() const;
  const SubscriberStats& stats() const { return stats_; }
  // Replay sockets open now.
  size_t replay_sockets() const { return replay_clients_.size(); }
  // True when no gap is known to be waiting for a replay.
  bool caught_up() const;

 private:
  struct StreamState {
    uint64_t cursor = 0;
    uint64_t epoch = 0;        // the publisher's incarnation the cursor counts in (0: none seen yet)
    std::string endpoint;      // replay endpoint (from heartbeats)
    uint64_t wanted = 0;       // a replay up to at least this seq is due
    int64_t retry_at_ms = 0;
    uint32_t failures = 0;     // replay requests failed in a row (backoff)
    bool in_flight = false;    // a ReplayRequest is out
    bool dirty = false;        // cursor/endpoint to persist in the batch
  };

  bool tracks(std::string_view stream) const;
  StreamState& state(std::string_view stream);
  void handle(std::string_view topic, std::span<const uint8_t> bytes, storage::Batch& batch);
  void apply(const Event& e, StreamState& st, storage::Batch& batch);
  // Whether `e` belongs to the incarnation the cursor counts in. A newer
  // epoch (the publisher was wiped, or a cloud slot's next machine) starts
  // the cursor over at 0; an older one is the previous incarnation, late.
  bool same_incarnation(const Event& e, StreamState& st);
  void request_replay(const std::string& stream, StreamState& st);
  void on_replay(const std::string& stream, Result<rpc::Reply> reply);
  // One event of a ReplayBatch, checked and applied; whether it counted.
  bool apply_replayed(const std::string& stream, StreamState& st, const fb::RawEvent& raw, const fb::ReplayBatch& rb,
                      storage::Batch& batch);
  void persist(storage::Batch& batch);
  // Counts a refused message and logs it at most once a second.
  void reject(std::string_view topic, size_t bytes, std::string_view why);

  zmq::context_t& ctx_;
  storage::Store& store_;
  storage::Cf cursors_cf_;
  SubscriberOptions options_;
  Handler handler_;
  SnapshotBegin snapshot_begin_;
  zmq::socket_t socket_;
  std::map<std::string, StreamState, std::less<>> streams_;
  struct ReplayClient {
    std::unique_ptr<rpc::AsyncClient> client;
    int64_t last_used_ms = 0;
  };
  // Closes the replay sockets with nothing in flight that have been unused
  // for replay_idle_close_ms, or for any time when a new endpoint waits for
  // a socket at max_replay_endpoints.
  void close_unused_replay_clients(int64_t now_ms);
  // A replay of `stream` failed: wait retry_ms doubled per failure in a
  // row (up to retry_max_ms) before asking again.
  void replay_failed(const std::string& stream, StreamState& st, std::string_view why);
  std::map<std::string, ReplayClient> replay_clients_;
  bool endpoint_waits_ = false;  // a new endpoint found max_replay_endpoints sockets open
  Runtime* runtime_ = nullptr;
  // The stream of the previous live event: most events follow one another
  // on the same stream, so this skips the map lookup and prefix check.
  std::string last_stream_;
  StreamState* last_state_ = nullptr;
  SubscriberStats stats_;
  int64_t last_reject_log_ms_ = 0;
};

}  // namespace trainyard::bus
