// CloudPools' moving back (CloudOptions::move_to_owned_min_left_s): a
// rented node whose resumable jobs owned nodes can take now is emptied, its
// jobs requeued onto the owned GPUs, and the rented nodes are kept closed
// while those jobs wait to start again.
#include <algorithm>
#include <functional>
#include <iterator>

#include <fmt/format.h>

#include "core/cloud_pools.h"
#include "text/gpu_type.h"

namespace trainyard::broker {

namespace {

constexpr int64_t kSecond = 1'000'000'000;

using Room = CloudPools::Room;

uint32_t free_gpus_of_type(const Node& n, std::string_view type) {
  uint32_t count = 0;
  for (auto& g : n.info->gpus) {
    if (g && (type.empty() || text::same_gpu_type(g->type, type)) && !n.gpu_holder.count(g->index)) ++count;
  }
  return count;
}

// Places each part of a job (one lease: one node) that runs on a rented node
// on a distinct owned node with room of `type`, taking that room; its parts
// on owned nodes stay where they are. False (room unchanged) if one does
// not fit.
bool place_parts(const std::vector<const Lease*>& parts, std::string_view type, std::vector<Room>& room,
                 const std::function<bool(std::string_view)>& rented) {
  std::vector<Room> trial = room;
  std::set<std::string_view> used;
  for (const Lease* part : parts) {
    if (!rented(part->node)) used.insert(part->node);
  }
  for (const Lease* part : parts) {
    if (!rented(part->node)) continue;
    auto gpus = static_cast<uint32_t>(part->gpus.size());
    auto it = std::find_if(trial.begin(), trial.end(), [&](const Room& r) {
      return !used.count(r.node->name()) && free_gpus_of_type(*r.node, type) >= gpus && r.gpus >= gpus &&
             r.cpus >= static_cast<int64_t>(part->cpus) && r.memory_mb >= static_cast<int64_t>(part->memory_mb);
    });
    if (it == trial.end()) return false;
    it->gpus -= gpus;
    it->cpus -= part->cpus;
    it->memory_mb -= static_cast<int64_t>(part->memory_mb);
    used.insert(it->node->name());
  }
  room = std::move(trial);
  return true;
}

// A moved job that has not started again within this long no longer keeps
// rented nodes closed (another job took the owned room first).
constexpr int64_t kMovingForNs = 600 * kSecond;
// A moved job neither stopping nor waiting this long after its move has
// ended or was cancelled (shorter: it may be between its run's end and its
// requeue, which the scheduler's waiting list shows a poll later).
constexpr int64_t kMovedGoneNs = 60 * kSecond;
// Why a ready rented node is drained while moved jobs wait: the node's own
// record (kept across a broker restart) says which to open again after.
constexpr std::string_view kClosedForMove = "cloud: closed while jobs moved to owned nodes start there";

CloudPools::JobParts live_parts(const Cluster& cluster) {
  CloudPools::JobParts parts;
  for (auto& [name, n] : cluster.nodes()) {
    for (uint64_t id : n.leases) {
      if (const Lease* l = cluster.lease(id); l && l->live()) parts[l->job_id].push_back(l);
    }
  }
  return parts;
}

}  // namespace

void CloudPools::move_to_owned(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns,
                               CloudEffects& out) {
  if (options_.move_to_owned_min_left_s <= 0 && moving_.empty()) return;
  JobParts parts = live_parts(cluster);
  track_moving(waiting, parts, cluster, now_ns, out);
  if (options_.move_to_owned_min_left_s <= 0) return;
  std::vector<Room> room;
  for (auto& [name, n] : cluster.nodes()) {
    uint32_t free = n.up && !n.drained && !is_cloud_node(name) ? free_gpus_of_type(n, "") : 0;
    if (free == 0) continue;
    room.push_back({&n, free, static_cast<int64_t>(n.info->cpus) - n.cpus_used,
                    static_cast<int64_t>(n.info->memory_mb) - static_cast<int64_t>(n.memory_used_mb)});
  }
  for (auto& entry : leases_) {
    CloudLease& l = entry.second;  // a plain reference: lambdas may not capture a structured binding (clang)
    const Node* n = l.state == CloudState::kReady ? cluster.node(l.node) : nullptr;
    if (room.empty() || !n || n->leases.empty() || l.for_job != 0) continue;
    // Owned room goes to a waiting job first: none that owned nodes could take may want this type.
    bool wanted = std::any_of(waiting.begin(), waiting.end(), [&](const WaitingJob& j) {
      return j.waits_for_resources && !moving_.count(j.id) &&
             (j.gpu_type.empty() || text::same_gpu_type(j.gpu_type, l.gpu_type)) && owned_could_take(j, cluster);
    });
    std::set<uint64_t> jobs;
    if (wanted || !movable(*n, l.gpu_type, parts, cluster, now_ns, room, jobs)) continue;
    for (uint64_t job : jobs) {
      moved_.insert(job);
      moving_[job] = now_ns;
    }
    std::string why = fmt::format("owned GPUs are free: its {} resumable job(s) move there (requeued)", jobs.size());
    out.interruptions.push_back({l.node, 0, why, {jobs.begin(), jobs.end()}});
    move(l, CloudState::kDraining, why, now_ns, out);
  }
}

void CloudPools::track_moving(const std::vector<WaitingJob>& waiting, const JobParts& parts, Cluster& cluster,
                              int64_t now_ns, CloudEffects& out) {
  std::set<uint64_t> waits;
  for (auto& j : waiting) waits.insert(j.id);
  // A moved job is kept apart while it stops on its rented node and waits to
  // start again; no more once it has started on owned nodes, is neither
  // stopping nor waiting a while after (cancelled, ended), or took too long.
  for (auto it = moving_.begin(); it != moving_.end();) {
    auto p = parts.find(it->first);
    bool stopping = false, started = false;
    for (const Lease* l : p == parts.end() ? std::vector<const Lease*>{} : p->second) {
      (is_cloud_node(l->node) ? stopping : started) = true;
    }
    int64_t since = now_ns - it->second;
    bool gone = !waits.count(it->first) && !stopping && since > kMovedGoneNs;
    bool done = (started && !stopping) || gone || since > kMovingForNs;
    it = done ? moving_.erase(it) : std::next(it);
  }
  // Meanwhile ready rented nodes take no new job (rented_for_eligible_only's
  // gate keeps them closed itself), so the moved jobs start on owned GPUs.
  for (auto& [id, l] : leases_) {
    const Node* n = l.state == CloudState::kReady ? cluster.node(l.node) : nullptr;
    if (!n || l.for_job != 0) continue;
    if (!moving_.empty() && !n->drained) {
      (void)cluster.drain(l.node, true, kClosedForMove, out.cluster);
    } else if (moving_.empty() && n->drained && n->drain_reason == kClosedForMove &&
               !options_.rented_for_eligible_only) {
      (void)cluster.drain(l.node, false, "cloud: moved jobs have started", out.cluster);
    }
  }
}

bool CloudPools::movable(const Node& n, std::string_view gpu_type, const JobParts& parts, const Cluster& cluster,
                         int64_t now_ns, std::vector<Room>& room, std::set<uint64_t>& jobs) const {
  for (uint64_t lid : n.leases) {
    if (const Lease* x = cluster.lease(lid)) jobs.insert(x->job_id);
  }
  int64_t min_left_ns = options_.move_to_owned_min_left_s * kSecond;
  std::vector<Room> trial = room;
  for (uint64_t job : jobs) {
    auto p = parts.find(job);
    if (p == parts.end() || moved_.count(job)) return false;
    for (const Lease* x : p->second) {
      int64_t limit_s = x->spec ? static_cast<int64_t>(x->spec->time_limit_s) : 0;
      bool left = limit_s == 0 || x->granted_ns + limit_s * kSecond - now_ns >= min_left_ns;
      if (x->state != LeaseState::kGranted || !x->spec || !x->spec->resumable || !left) return false;
    }
    if (!place_parts(p->second, gpu_type, trial, [this](std::string_view node) { return is_cloud_node(node); })) {
      return false;
    }
  }
  room = std::move(trial);
  return true;
}

}  // namespace trainyard::broker
