// The live routes: Server-Sent Events of bus events (/api/v1/events), the
// recent events as a list, and log tails and follows (/api/v1/jobs/N/logs).
// Every stream holds a slot of StreamLimits for as long as it is open, and
// nothing it sends can throw out of its content provider.
#include "api.h"

#include <functional>
#include <memory>
#include <set>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "core/codec.h"
#include "http_util.h"
#include "util/clock.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

namespace {

// A content provider that cannot throw into httplib: a failure ends the
// stream, and is logged.
httplib::ContentProviderWithoutLength guarded(const char* what, std::function<bool(httplib::DataSink&)> step) {
  return [what, step = std::move(step)](size_t, httplib::DataSink& sink) {
    try {
      return step(sink);
    } catch (const std::exception& e) {
      spdlog::warn("{} stream ended: {}", what, e.what());
    } catch (...) {
      spdlog::warn("{} stream ended by an unknown error", what);
    }
    return false;
  };
}

bool write(httplib::DataSink& sink, const std::string& m) { return sink.write(m.data(), m.size()); }

// The node that ran job `id` (rank 0 holds the log) and its agent's endpoint.
std::optional<ApiError> agent_of(Backends& b, uint64_t id, std::string* node, std::string* endpoint) {
  auto j = get_job(b, id);
  if (!j) return from_status(j.status(), service_name(Service::kScheduler));
  const auto* rec = &expect<fb::JobRecord>(*j);
  if (!rec->nodes() || rec->nodes()->size() == 0 || !rec->nodes()->Get(0)) {
    return ApiError{404, "job " + std::to_string(id) + " is " + state_name(rec->state()) +
                             " and has not run on any node yet: no logs",
                    "", "", "NotFound"};
  }
  *node = rec->nodes()->Get(0)->str();
  auto n = list_nodes(b);
  if (!n) return from_status(n.status(), service_name(Service::kBroker));
  for (const auto* l : bodies<fb::NodeList>(*n)) {
    if (!l->nodes()) continue;
    for (const auto* ns : *l->nodes()) {
      const auto* info = ns->node();
      if (info && info->name() && info->name()->str() == *node && info->agent_endpoint()) {
        *endpoint = info->agent_endpoint()->str();
      }
    }
  }
  if (endpoint->empty()) {
    return ApiError{503, "the agent of node '" + *node + "' (where job " + std::to_string(id) +
                             " ran) is not registered with the resource broker",
                    "", "agent " + *node, "Unavailable"};
  }
  return std::nullopt;
}

std::string chunk_data(const fb::LogChunk& c) {
  return c.data() ? std::string(reinterpret_cast<const char*>(c.data()->data()), c.data()->size()) : "";
}

}  // namespace

StreamLimits::Slot Api::open_stream(const Request& req, Response& res) {
  std::optional<ApiError> err;
  auto slot = streams_.open(req.remote_addr.empty() ? "unknown" : req.remote_addr, &err);
  if (!slot) send_error(res, *err);
  return slot;
}

void Api::logs(const Request& req, Response& res) {
  std::optional<ApiError> err;
  uint64_t id = id_of(req);
  std::string stream = param(req, "stream", "stdout");
  if (stream != "stdout" && stream != "stderr") {
    return send_error(res, bad_request("stream", "query parameter 'stream' must be stdout or stderr"));
  }
  auto tail = uint_param(req, "tail", 64 * 1024, 0, 4u << 20, err);
  bool has_offset = req.has_param("offset");
  auto offset = uint_param(req, "offset", 0, 0, UINT64_MAX, err);
  auto attempt = static_cast<uint32_t>(uint_param(req, "attempt", 0, 0, UINT32_MAX, err));
  std::string follow = param(req, "follow");
  if (err) return send_error(res, *err);
  std::string node, endpoint;
  if (auto e = agent_of(backends_, id, &node, &endpoint)) return send_error(res, *e);
  std::string agent = "agent " + node;
  bool is_stderr = stream == "stderr";
  LogReader read = [this, node, endpoint, id, attempt, is_stderr](uint64_t off, uint32_t max) {
    return backends_.call_agent(node, endpoint, fb::RequestBody::ReadLog, [&](flatbuffers::FlatBufferBuilder& fbb) {
      return fb::CreateReadLog(fbb, id, attempt, is_stderr, off, max).Union();
    });
  };
  // Tail: learn the size, then read the last `tail` bytes.
  uint64_t start = offset;
  if (!has_offset) {
    auto probe = read(0, 1);
    if (!probe) return send_error(res, from_status(probe.status(), agent));
    uint64_t size = expect<fb::LogChunk>(*probe).size();
    start = size > tail ? size - tail : 0;
  }
  if (follow == "1" || follow == "true") return follow_log(req, res, std::move(read), agent, start);
  auto r = read(start, static_cast<uint32_t>(std::max<uint64_t>(tail, 1)));
  if (!r) return send_error(res, from_status(r.status(), agent));
  const auto* c = &expect<fb::LogChunk>(*r);
  std::string data = chunk_data(*c);
  send_json(res, 200,
            {{"job_id", id}, {"node", node}, {"stream", stream}, {"offset", c->offset()}, {"size", c->size()},
             {"next_offset", c->offset() + data.size()}, {"finished", c->finished()}, {"data", data}});
}

// Follow: SSE "log" events {offset, data} as the file grows, then "end".
void Api::follow_log(const Request& req, Response& res, LogReader read, const std::string& agent, uint64_t start) {
  auto slot = open_stream(req, res);
  if (!slot) return;
  struct Follow {
    uint64_t offset;
    bool ended = false;
    int64_t last_write_ms = 0;
    StreamLimits::Slot slot;
  };
  auto st = std::make_shared<Follow>(Follow{start, false, monotonic_ms(), std::move(slot)});
  sse_headers(res);
  res.set_chunked_content_provider("text/event-stream", guarded("log", [this, st, read, agent](httplib::DataSink& sink) {
    if (st->ended || hub_.stopped()) {
      sink.done();
      return true;
    }
    auto r = read(st->offset, 64 * 1024);
    if (!r) {
      st->ended = true;
      return write(sink, sse_message(0, "error", dump_json(from_status(r.status(), agent).body())));
    }
    const auto* c = r->body<fb::LogChunk>();
    if (!c) return false;
    std::string data = chunk_data(*c);
    if (!data.empty()) {
      st->offset = c->offset() + data.size();
      st->last_write_ms = monotonic_ms();
      return write(sink, sse_message(0, "log", dump_json(Json{{"offset", c->offset()}, {"data", data}})));
    }
    if (c->finished() && st->offset >= c->size()) {
      st->ended = true;
      return write(sink, sse_message(0, "end", dump_json(Json{{"offset", st->offset}})));
    }
    if (monotonic_ms() - st->last_write_ms > options_.keepalive_ms) {
      st->last_write_ms = monotonic_ms();
      if (!write(sink, ": keepalive\n\n")) return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the agent's file grows; poll it
    return true;
  }));
}

void Api::events(const Request& req, Response& res) {
  std::optional<ApiError> err;
  std::vector<std::string> kinds = split(param(req, "kinds", "job,node,lease,run,account"), ',');
  static const std::set<std::string> kKinds{"job", "node", "lease", "run", "account", "metric"};
  for (const auto& k : kinds) {
    if (!kKinds.count(k)) {
      return send_error(res, bad_request("kinds", "unknown event kind '" + k + "': use job, node, lease, run, account, metric"));
    }
  }
  // Resume after the last event the browser saw (EventSource sends it back
  // on reconnect); otherwise start with what comes next.
  uint64_t after = hub_.last_id();
  if (req.has_header("Last-Event-ID")) {
    try {
      after = std::stoull(req.get_header_value("Last-Event-ID"));
    } catch (const std::exception&) {
    }
  }
  after = uint_param(req, "after", after, 0, UINT64_MAX, err);
  if (err) return send_error(res, *err);
  auto slot = open_stream(req, res);
  if (!slot) return;
  struct Sse {
    uint64_t after;
    std::vector<std::string> kinds;
    bool started = false;
    int64_t last_write_ms;
    StreamLimits::Slot slot;
  };
  auto st = std::make_shared<Sse>(Sse{after, kinds, false, monotonic_ms(), std::move(slot)});
  sse_headers(res);
  res.set_chunked_content_provider("text/event-stream", guarded("events", [this, st](httplib::DataSink& sink) {
    if (!st->started) {
      st->started = true;
      return write(sink, "retry: 2000\n" + sse_message(0, "hello", dump_json(Json{{"last_id", st->after}})));
    }
    if (hub_.stopped()) {
      sink.done();
      return true;
    }
    auto evs = hub_.wait_after(st->after, st->kinds, std::chrono::milliseconds(1000));
    std::string out;
    for (const auto& e : evs) {
      out += sse_message(e.id, e.topic, e.json);
      st->after = e.id;
    }
    if (out.empty() && monotonic_ms() - st->last_write_ms > options_.keepalive_ms) out = ": keepalive\n\n";
    if (out.empty()) return true;
    st->last_write_ms = monotonic_ms();
    return write(sink, out);
  }));
}

void Api::recent_events(const Request& req, Response& res) {
  std::optional<ApiError> err;
  auto limit = uint_param(req, "limit", 50, 1, 4096, err);
  if (err) return send_error(res, *err);
  auto kinds = split(param(req, "kinds", "job,node,lease,run,account"), ',');
  Json list = Json::array();
  for (const auto& e : hub_.recent(limit, kinds)) {
    list.push_back({{"id", e.id}, {"kind", e.kind}, {"topic", e.topic}, {"data", Json::parse(e.json)}});
  }
  send_json(res, 200, {{"events", list}, {"last_id", hub_.last_id()}});
}

}  // namespace trainyard::gateway
