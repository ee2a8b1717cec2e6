#include "core/events.h"

#include "core/codec.h"
#include "wire/fb_str.h"

namespace trainyard::gateway {

namespace {

nlohmann::json strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  auto j = nlohmann::json::array();
  if (v) {
    for (const auto* s : *v) j.push_back(str(s));
  }
  return j;
}

}  // namespace

std::optional<EventView> view_of(const bus::Event& e) {
  using Json = nlohmann::json;
  EventView v;
  v.topic = std::string(e.topic);
  Json d;
  switch (e.type()) {
    case fb::Payload::JobSubmitted: {
      auto* p = e.as<fb::JobSubmitted>();
      if (!p) return std::nullopt;
      v.kind = "job";
      const auto* s = p->spec();
      d = {{"job_id", p->job_id()},
           {"name", s ? str(s->name()) : ""},
           {"user", s ? str(s->user()) : ""},
           {"account", s ? str(s->account()) : ""},
           {"experiment", s ? str(s->experiment()) : ""},
           {"array_job_id", p->array_job_id()},
           {"array_index", p->array_index()}};
      break;
    }
    case fb::Payload::JobStateChanged: {
      auto* p = e.as<fb::JobStateChanged>();
      if (!p) return std::nullopt;
      v.kind = "job";
      d = {{"job_id", p->job_id()},
           {"from", state_name(p->from())},
           {"to", state_name(p->to())},
           {"reason", str(p->reason())},
           {"nodes", strings(p->nodes())},
           {"exit_code", p->exit_code()},
           {"attempt", p->attempt()},
           {"account", str(p->account())},
           {"user", str(p->user())}};
      break;
    }
    case fb::Payload::NodeUp: {
      auto* p = e.as<fb::NodeUp>();
      if (!p) return std::nullopt;
      v.kind = "node";
      const auto* n = p->node();
      d = {{"node", n ? str(n->name()) : ""}, {"gpus", n && n->gpus() ? n->gpus()->size() : 0}};
      break;
    }
    case fb::Payload::NodeDown: {
      auto* p = e.as<fb::NodeDown>();
      if (!p) return std::nullopt;
      v.kind = "node";
      d = {{"node", str(p->name())}, {"reason", str(p->reason())}};
      break;
    }
    case fb::Payload::NodeDrained: {
      auto* p = e.as<fb::NodeDrained>();
      if (!p) return std::nullopt;
      v.kind = "node";
      d = {{"node", str(p->name())}, {"drained", p->drained()}, {"reason", str(p->reason())}};
      break;
    }
    case fb::Payload::LeaseGranted: {
      auto* p = e.as<fb::LeaseGranted>();
      if (!p) return std::nullopt;
      v.kind = "lease";
      d = {{"lease_id", p->lease_id()}, {"job_id", p->job_id()}, {"node", str(p->node())},
           {"gpus", p->gpu_indices() ? p->gpu_indices()->size() : 0}, {"gpu_type", str(p->gpu_type())}};
      break;
    }
    case fb::Payload::LeaseRevoked: {
      auto* p = e.as<fb::LeaseRevoked>();
      if (!p) return std::nullopt;
      v.kind = "lease";
      d = {{"lease_id", p->lease_id()}, {"job_id", p->job_id()}, {"node", str(p->node())}, {"reason", str(p->reason())}};
      break;
    }
    case fb::Payload::LeaseReleased: {
      auto* p = e.as<fb::LeaseReleased>();
      if (!p) return std::nullopt;
      v.kind = "lease";
      d = {{"lease_id", p->lease_id()}, {"job_id", p->job_id()}, {"node", str(p->node())}, {"reason", str(p->reason())}};
      break;
    }
    case fb::Payload::LeaseLost: {
      auto* p = e.as<fb::LeaseLost>();
      if (!p) return std::nullopt;
      v.kind = "lease";
      d = {{"lease_id", p->lease_id()}, {"job_id", p->job_id()}, {"node", str(p->node())}, {"reason", str(p->reason())}};
      break;
    }
    case fb::Payload::RunStarted: {
      auto* p = e.as<fb::RunStarted>();
      if (!p) return std::nullopt;
      v.kind = "run";
      d = {{"job_id", p->job_id()}, {"attempt", p->attempt()}, {"node", str(p->node())}, {"lease_id", p->lease_id()}};
      break;
    }
    case fb::Payload::RunFinished: {
      auto* p = e.as<fb::RunFinished>();
      if (!p) return std::nullopt;
      v.kind = "run";
      d = {{"job_id", p->job_id()},     {"attempt", p->attempt()},
           {"node", str(p->node())},    {"outcome", fb::EnumNameRunOutcome(p->outcome())},
           {"exit_code", p->exit_code()}, {"signal", p->signal()},
           {"reason", str(p->reason())}};
      break;
    }
    case fb::Payload::AccountWarning: {
      auto* p = e.as<fb::AccountWarning>();
      if (!p) return std::nullopt;
      v.kind = "account";
      d = {{"account", str(p->account())}, {"month", str(p->month())}, {"spent_micros", p->spent_micros()},
           {"limit_micros", p->limit_micros()}};
      break;
    }
    case fb::Payload::AccountBlocked: {
      auto* p = e.as<fb::AccountBlocked>();
      if (!p) return std::nullopt;
      v.kind = "account";
      d = {{"account", str(p->account())}, {"month", str(p->month())}, {"spent_micros", p->spent_micros()},
           {"limit_micros", p->limit_micros()}, {"blocked", p->blocked()}};
      break;
    }
    case fb::Payload::MetricBatch: {
      auto* p = e.as<fb::MetricBatch>();
      if (!p) return std::nullopt;
      v.kind = "metric";
      int64_t last_step = 0;
      if (p->points()) {
        for (const auto* pt : *p->points()) last_step = std::max(last_step, pt->step());
      }
      d = {{"job_id", p->job_id()},
           {"points", p->points() ? p->points()->size() : 0},
           {"names", strings(p->names())},
           {"last_step", last_step}};
      break;
    }
    default:
      return std::nullopt;
  }
  // "lease.node-3.granted" -> "lease.granted": one SSE event name per kind
  // of change (the node is in the data).
  if (v.kind == "lease") v.topic = "lease." + v.topic.substr(v.topic.rfind('.') + 1);
  d["time_ms"] = ns_to_ms(e.time_ns());
  d["topic"] = v.topic;
  v.data = std::move(d);
  return v;
}

}  // namespace trainyard::gateway
