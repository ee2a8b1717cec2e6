// What the scheduler hears on the bus: node.*, lease.*, run.* and
// account.blocked, each handed to the core, with the stored node, lease and
// account rows kept in step in the loop's batch (directory.* goes to the
// directory feed, cloud.* to cloud_waits.cc).
#include <algorithm>
#include <string>

#include "job_store.h"
#include "shell.h"
#include "storage/keys.h"
#include "wire/fb_str.h"

namespace trainyard::scheduler {

using storage::Key;

// --- events ------------------------------------------------------------------

// A job's history records when a change happened where it happened (the
// agent's clock for a run's start and end, the broker's for a lease), not
// when this scheduler heard of it: after a restart it may hear seconds late,
// and the history must still agree with what billing charged. Never later
// than now (a node's clock running ahead does not date the future).
static int64_t happened_at(int64_t event_ns, int64_t now_ns) {
  return event_ns > 0 ? std::min(event_ns, now_ns) : now_ns;
}

void SchedulerShell::on_event(const bus::Event& e, storage::Batch& batch) {
  int64_t now = clock_.now_ns();
  int64_t at = happened_at(e.time_ns(), now);
  if (directory_->apply(e, batch)) return;
  switch (e.type()) {
    case fb::Payload::NodeUp:
    case fb::Payload::NodeDown:
    case fb::Payload::NodeDrained:
      on_node_event(e, batch);
      return;
    case fb::Payload::CloudLease:
      on_cloud_lease(e);
      return;
    case fb::Payload::CloudRefusals:
      on_cloud_refusals(e);
      return;
    case fb::Payload::LeaseGranted: {
      Grant g = grant_of(*e.as<fb::LeaseGranted>());
      core_.lease_granted(g, at);
      batch.put(leases_cf_, Key().u64(g.lease_id), lease_value(g));
      return;
    }
    case fb::Payload::LeaseReleased: {
      auto* l = e.as<fb::LeaseReleased>();
      core_.lease_released(l->lease_id(), l->job_id(), at);
      batch.del(leases_cf_, Key().u64(l->lease_id()));
      return;
    }
    case fb::Payload::LeaseLost: {
      auto* l = e.as<fb::LeaseLost>();
      core_.lease_lost(l->lease_id(), l->job_id(), l->attempt(), str(l->reason()), at);
      batch.del(leases_cf_, Key().u64(l->lease_id()));
      return;
    }
    case fb::Payload::RunStarted: {
      auto* s = e.as<fb::RunStarted>();
      int64_t started = happened_at(s->start_time_ns(), at);
      core_.run_started(s->job_id(), s->attempt(), s->lease_id(), started, started);
      return;
    }
    case fb::Payload::RunFinished: {
      auto* f = e.as<fb::RunFinished>();
      core_.run_finished(RunEnd{f->job_id(), f->attempt(), f->lease_id(), f->outcome(), f->exit_code(), f->signal(),
                                str(f->reason())},
                         happened_at(f->end_time_ns(), at));
      return;
    }
    case fb::Payload::AccountBlocked:
      on_account_blocked(e, now, batch);
      return;
    default:
      return;  // lease.revoked, account.warning...: nothing for the scheduler
  }
}

void SchedulerShell::on_account_blocked(const bus::Event& e, int64_t now, storage::Batch& batch) {
  // Billing's alone: any publisher may name a topic account.blocked on
  // its own stream (an agent unblocking an account, say).
  if (e.stream() != bus::stream_name("account.", options_.trust.directory_owner)) return;
  auto* a = e.as<fb::AccountBlocked>();
  std::string account = str(a->account());
  core_.account_blocked(account, a->blocked(), a->stop_running(), now);
  if (a->blocked()) {
    batch.put(accounts_cf_, account, "1");
  } else {
    batch.del(accounts_cf_, account);
  }
}

void SchedulerShell::on_node_event(const bus::Event& e, storage::Batch& batch) {
  switch (e.type()) {
    case fb::Payload::NodeUp: {
      auto* n = e.as<fb::NodeUp>()->node();
      if (!n || !n->name()) return;
      fb::NodeInfoT info;
      n->UnPackTo(&info);
      core_.node_up(info);
      auto existing = read_or_abort(store_.get(nodes_cf_, info.name));
      bool drained = existing && existing->size() > 1 && (*existing)[1] != 0;
      batch.put(nodes_cf_, info.name, node_value(info, true, drained));
      if (drained) core_.node_drained(info.name, true);
      return;
    }
    case fb::Payload::NodeDown:
    case fb::Payload::NodeDrained: {
      std::string name;
      bool down = e.type() == fb::Payload::NodeDown;
      bool drained = false;
      if (down) {
        name = str(e.as<fb::NodeDown>()->name());
        core_.node_down(name);
      } else {
        auto* d = e.as<fb::NodeDrained>();
        name = str(d->name());
        drained = d->drained();
        core_.node_drained(name, drained);
      }
      // Keep the stored node's flags in step (the node's own record comes
      // with node.up).
      auto v = read_or_abort(store_.get(nodes_cf_, name));
      if (v && v->size() > 2) {
        (*v)[down ? 0 : 1] = down ? 0 : (drained ? 1 : 0);
        batch.put(nodes_cf_, name, *v);
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace trainyard::scheduler
