#include "core/events.h"

#include <algorithm>

#include "core/codec.h"
#include "wire/fb_str.h"

namespace trainyard::gateway {

namespace {

Json strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  auto j = Json::array();
  if (v) {
    for (const auto* s : *v) j.push_back(str(s));
  }
  return j;
}

// One function per payload: the event's data before the time_ms and topic
// that every view has.

Json job_submitted(const fb::JobSubmitted& p) {
  const auto* s = p.spec();
  return {{"job_id", p.job_id()},
          {"name", s ? str(s->name()) : ""},
          {"user", s ? str(s->user()) : ""},
          {"account", s ? str(s->account()) : ""},
          {"experiment", s ? str(s->experiment()) : ""},
          {"array_job_id", p.array_job_id()},
          {"array_index", p.array_index()}};
}

Json job_state_changed(const fb::JobStateChanged& p) {
  return {{"job_id", p.job_id()},
          {"from", state_name(p.from())},
          {"to", state_name(p.to())},
          {"reason", str(p.reason())},
          {"nodes", strings(p.nodes())},
          {"exit_code", p.exit_code()},
          {"attempt", p.attempt()},
          {"account", str(p.account())},
          {"user", str(p.user())}};
}

Json node_up(const fb::NodeUp& p) {
  const auto* n = p.node();
  return {{"node", n ? str(n->name()) : ""}, {"gpus", n && n->gpus() ? n->gpus()->size() : 0}};
}

Json node_down(const fb::NodeDown& p) { return {{"node", str(p.name())}, {"reason", str(p.reason())}}; }

Json node_drained(const fb::NodeDrained& p) {
  return {{"node", str(p.name())}, {"drained", p.drained()}, {"reason", str(p.reason())}};
}

Json lease_granted(const fb::LeaseGranted& p) {
  return {{"lease_id", p.lease_id()}, {"job_id", p.job_id()}, {"node", str(p.node())},
          {"gpus", p.gpu_indices() ? p.gpu_indices()->size() : 0}, {"gpu_type", str(p.gpu_type())}};
}

// A revoked, released or lost lease: the same four fields.
template <typename LeaseEnd>
Json lease_ended(const LeaseEnd& p) {
  return {{"lease_id", p.lease_id()}, {"job_id", p.job_id()}, {"node", str(p.node())}, {"reason", str(p.reason())}};
}

Json run_started(const fb::RunStarted& p) {
  return {{"job_id", p.job_id()}, {"attempt", p.attempt()}, {"node", str(p.node())}, {"lease_id", p.lease_id()}};
}

Json run_finished(const fb::RunFinished& p) {
  return {{"job_id", p.job_id()},     {"attempt", p.attempt()},
          {"node", str(p.node())},    {"outcome", fb::EnumNameRunOutcome(p.outcome())},
          {"exit_code", p.exit_code()}, {"signal", p.signal()},
          {"reason", str(p.reason())}};
}

Json account_warning(const fb::AccountWarning& p) {
  return {{"account", str(p.account())}, {"month", str(p.month())}, {"spent_micros", p.spent_micros()},
          {"limit_micros", p.limit_micros()}};
}

Json account_blocked(const fb::AccountBlocked& p) {
  return {{"account", str(p.account())}, {"month", str(p.month())}, {"spent_micros", p.spent_micros()},
          {"limit_micros", p.limit_micros()}, {"blocked", p.blocked()}};
}

Json metric_batch(const fb::MetricBatch& p) {
  int64_t last_step = 0;
  if (p.points()) {
    for (const auto* pt : *p.points()) last_step = std::max(last_step, pt->step());
  }
  return {{"job_id", p.job_id()},
          {"points", p.points() ? p.points()->size() : 0},
          {"names", strings(p.names())},
          {"last_step", last_step}};
}

// An event's kind ("job", "lease"...) and its payload's data.
struct Body {
  const char* kind;
  Json data;
};

// The payload as a T, viewed by `data`; nothing when it is not a T.
template <typename T>
std::optional<Body> body(const bus::Event& e, const char* kind, Json (*data)(const T&)) {
  const auto* p = e.as<T>();
  if (!p) return std::nullopt;
  return Body{kind, data(*p)};
}

// Heartbeats, usage ticks and payloads this gateway does not know have no view.
std::optional<Body> body_of(const bus::Event& e) {
  switch (e.type()) {
    case fb::Payload::JobSubmitted: return body(e, "job", job_submitted);
    case fb::Payload::JobStateChanged: return body(e, "job", job_state_changed);
    case fb::Payload::NodeUp: return body(e, "node", node_up);
    case fb::Payload::NodeDown: return body(e, "node", node_down);
    case fb::Payload::NodeDrained: return body(e, "node", node_drained);
    case fb::Payload::LeaseGranted: return body(e, "lease", lease_granted);
    case fb::Payload::LeaseRevoked: return body(e, "lease", lease_ended<fb::LeaseRevoked>);
    case fb::Payload::LeaseReleased: return body(e, "lease", lease_ended<fb::LeaseReleased>);
    case fb::Payload::LeaseLost: return body(e, "lease", lease_ended<fb::LeaseLost>);
    case fb::Payload::RunStarted: return body(e, "run", run_started);
    case fb::Payload::RunFinished: return body(e, "run", run_finished);
    case fb::Payload::AccountWarning: return body(e, "account", account_warning);
    case fb::Payload::AccountBlocked: return body(e, "account", account_blocked);
    case fb::Payload::MetricBatch: return body(e, "metric", metric_batch);
    default: return std::nullopt;
  }
}

}  // namespace

std::optional<EventView> view_of(const bus::Event& e) {
  auto b = body_of(e);
  if (!b) return std::nullopt;
  EventView v;
  v.kind = b->kind;
  v.topic = std::string(e.topic);
  // "lease.node-3.granted" -> "lease.granted": one SSE event name per kind
  // of change (the node is in the data).
  if (v.kind == "lease") v.topic = "lease." + v.topic.substr(v.topic.rfind('.') + 1);
  b->data["time_ms"] = ns_to_ms(e.time_ns());
  b->data["topic"] = v.topic;
  v.data = std::move(b->data);
  return v;
}

}  // namespace trainyard::gateway
