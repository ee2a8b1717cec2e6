// ty cloud: the rented nodes of the cloud pools (status) and their kill
// switch (pause, resume), globally or per pool. Asks the resource broker.
#include <iostream>

#include <zmq.hpp>

#include "commands.h"
#include "format.h"
#include "records/record_json.h"
#include "rpc/client.h"

namespace trainyard::ty {
namespace {

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// One request to the broker, as the client library would make it.
Result<rpc::Reply> ask_broker(Context& ctx, fb::RequestBody type, const rpc::BuildBody& build) {
  auto* c = ctx.client();
  if (!c) return Status::invalid("no endpoints");
  static zmq::context_t zctx(1);
  rpc::ClientOptions o;
  o.timeout_ms = c->endpoints().timeout_ms;
  o.principal = "user:" + ctx.user;
  o.server = c->endpoints().broker_principal;  // under CURVE: the broker's key, the user's own
  o.site = c->site();
  rpc::Client broker(zctx, "resource-broker", c->endpoints().broker, o);
  return broker.call(type, build);
}

void print_status(const fb::CloudReport& r, bool ended) {
  if (r.paused()) std::cout << "Every pool is PAUSED: " << str(r.pause_reason()) << "\n";
  Table pools({"POOL", "GPUS/NODE", "NODES(READY/LIVE/MAX)", "PRICE/NODE-H", "STATE"});
  if (r.pools()) {
    for (const auto* p : *r.pools()) {
      std::string state = p->paused() ? "paused: " + str(p->pause_reason()) : "active";
      if (!p->paused() && p->backoff_until_ns() > 0 && !str(p->backoff_reason()).empty()) {
        state += " (last backoff: " + str(p->backoff_reason()) + ")";
      }
      pools.add({str(p->name()), std::to_string(p->gpus_per_node()) + "x" + str(p->gpu_type()),
                 std::to_string(p->ready_nodes()) + "/" + std::to_string(p->live_nodes()) + "/" +
                     std::to_string(p->max_nodes()),
                 format_money(p->price_micros_per_hour()), state});
    }
  }
  std::cout << pools.render();
  Table leases({"LEASE", "POOL", "NODE", "STATE", "FOR JOB", "SINCE", "REASON"});
  if (r.leases()) {
    for (const auto* l : *r.leases()) {
      leases.add({std::to_string(l->lease_id()), str(l->pool()), str(l->node()),
                  fb::EnumNameCloudLeaseState(l->state()), l->for_job() ? std::to_string(l->for_job()) : "-",
                  format_time(l->state_ns()), str(l->reason())});
    }
  }
  if (leases.size() > 0) {
    std::cout << "\n" << leases.render();
  } else {
    std::cout << "\nNo cloud node is " << (ended ? "remembered" : "rented") << ".\n";
  }
  if (r.refused() && r.refused()->size() > 0) {
    std::cout << "\nNot rented for (budget):\n";
    for (const auto* x : *r.refused()) std::cout << "  job " << x->job_id() << ": " << str(x->reason()) << "\n";
  }
  if (ended && r.jobs_remembered() > 0) {
    std::cout << "\nJobs with a spot-interruption count or a move kept until they end: " << r.jobs_remembered() << "\n";
  }
}

CLI::App* add_pause(CLI::App& cloud, Context& ctx, Action& action, bool pause) {
  auto* cmd = cloud.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "Launch no more cloud nodes (every pool, or POOL); rented ones stay"
                                         : "Let every pool (or POOL) launch again");
  auto pool = std::make_shared<std::string>(), reason = std::make_shared<std::string>();
  cmd->add_option("POOL", *pool, "Pool name (default: the global switch)");
  if (pause) cmd->add_option("--reason", *reason, "Why (shown by ty cloud status)");
  cmd->callback([=, &ctx, &action] {
    action = [=, &ctx]() -> int {
      auto r = ask_broker(ctx, fb::RequestBody::CloudPause, [&](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateCloudPauseDirect(b, pool->c_str(), pause, reason->c_str()).Union();
      });
      if (!r) return fail(r.status());
      std::cout << (pause ? "Paused " : "Resumed ") << (pool->empty() ? "every pool" : "pool " + *pool) << "\n";
      return kExitOk;
    };
  });
  return cmd;
}

}  // namespace

void add_cloud_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* cloud = app.add_subcommand("cloud", "Cloud pools: rented nodes (status), the kill switch (pause, resume)");
  cloud->require_subcommand(1);
  auto* status = cloud->add_subcommand("status", "Pools and their rented nodes (lease, state, job it waits for)");
  auto json = std::make_shared<bool>(false), ended = std::make_shared<bool>(false);
  auto pool = std::make_shared<std::string>();
  status->add_option("POOL", *pool, "Only this pool");
  status->add_flag("--json", *json, "Print JSON");
  status->add_flag("--ended", *ended, "Also released and failed leases still remembered");
  status->callback([=, &ctx, &action] {
    action = [=, &ctx]() -> int {
      auto r = ask_broker(ctx, fb::RequestBody::CloudStatus, [&](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateCloudStatusDirect(b, pool->c_str(), *ended).Union();
      });
      if (!r) return fail(r.status());
      const auto* report = r->body<fb::CloudReport>();
      if (!report) return fail(Status::internal("the broker answered CloudStatus without a CloudReport"));
      if (*json) {
        std::cout << records::cloud_report_json(report).dump(2) << "\n";
        return kExitOk;
      }
      print_status(*report, *ended);
      return kExitOk;
    };
  });
  add_pause(*cloud, ctx, action, true);
  add_pause(*cloud, ctx, action, false);
}

}  // namespace trainyard::ty
