// Billing of rented cloud nodes: the broker's cloud leases (cloud.<pool>.*)
// tell what each node costs and whose job rented it; usage ticks from a
// cloud node are charged at that node's price instead of the rate card's,
// and the rest of the node's time (boot, idle, draining) is booked when its
// release is confirmed. Lines are of GPU type "cloud:<pool>" (job time) and
// "cloud:<pool>:overhead", so invoices show cloud and owned apart.
#include <spdlog/spdlog.h>

#include "calendar/calendar.h"
#include "shell.h"
#include "storage/keys.h"
#include "wire/fb_str.h"

namespace trainyard::billing {

namespace {
}  // namespace

void BillingShell::book(const CloudCharge& c, storage::Batch&) {
  auto s = ledger_.book(c.account, day_of(c.at_ns), c.user, c.job, c.line_type, c.gpu_ns, c.micros);
  if (!s) {
    ++stats_.refused;
    spdlog::warn("cloud charge of {} for {} ({}) refused: {}", c.micros, c.account, c.line_type, s.message());
  }
}

void BillingShell::on_cloud_lease(const bus::Event& e, storage::Batch& batch) {
  const auto* l = e.as<fb::CloudLease>();
  if (!l) return;
  CloudNode n;
  n.lease = l->lease_id();
  n.pool = str(l->pool());
  n.node = str(l->node());
  n.account = str(l->account());
  n.price_micros_per_hour = l->price_micros_per_hour();
  n.gpus = l->gpus() ? l->gpus() : 1;
  n.requested_ns = l->requested_ns();
  n.ended_ns = l->ended_ns();
  bool ended = l->state() == fb::CloudLeaseState::Released || l->state() == fb::CloudLeaseState::Failed;
  auto overhead = meter_.lease_changed(n, ended);
  if (overhead) {
    book(*overhead, batch);
    spdlog::info("cloud lease {} ({}) ended: {} micro-units of overhead to {}", n.lease, n.pool, overhead->micros,
                 overhead->account);
  }
  if (const CloudNode* kept = meter_.lease(n.lease)) {
    batch.put(cloud_cf_, storage::Key().u64(n.lease).bytes(), kept->encode());
  }
}

bool BillingShell::charge_cloud_usage(const fb::UsageTick& t, storage::Batch& batch) {
  std::string node = str(t.node());
  auto c = meter_.usage(node, str(t.account()), str(t.user()), t.job_id(), t.gpus(), t.start_ns(), t.end_ns());
  if (!c) return false;
  book(*c, batch);
  ++stats_.ticks;
  if (const CloudNode* kept = meter_.lease(c->lease)) {
    batch.put(cloud_cf_, storage::Key().u64(kept->lease).bytes(), kept->encode());
  }
  return true;
}

}  // namespace trainyard::billing
