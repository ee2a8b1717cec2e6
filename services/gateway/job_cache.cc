#include "job_cache.h"

#include <spdlog/spdlog.h>

#include "util/clock.h"

namespace trainyard::gateway {

namespace {

constexpr uint32_t kAllJobs = 1'000'000;
constexpr size_t kStartRefreshesPerRead = 64;
constexpr size_t kMaxStreams = 1024;

}  // namespace

JobCache::JobCache(Backends& backends, int64_t silence_ms) : backends_(backends), silence_ms_(silence_ms) {}

void JobCache::on_event(const bus::Event& e) {
  if (e.type() == fb::Payload::JobSubmitted) {
    if (const auto* p = e.as<fb::JobSubmitted>()) {
      std::lock_guard lock(mu_);
      table_.submitted(*p, e.time_ns());
    }
  } else if (e.type() == fb::Payload::JobStateChanged) {
    if (const auto* p = e.as<fb::JobStateChanged>()) {
      std::lock_guard lock(mu_);
      if (!table_.state_changed(*p, e.time_ns())) needs_seed_ = true;
    }
  }
}

void JobCache::on_heartbeat(std::string_view stream, uint64_t last_seq, uint64_t seen_seq) {
  int64_t now = monotonic_ms();
  if (!live(now)) needs_seed_ = true;  // first contact, or back after a silence
  last_heartbeat_ms_ = now;
  if (seen_seq >= last_seq) return;
  // Events the feed never saw: once per new tail, not every second.
  auto it = flagged_.find(stream);
  if (it != flagged_.end() && it->second >= last_seq) return;
  if (flagged_.size() >= kMaxStreams) flagged_.clear();
  flagged_[std::string(stream)] = last_seq;
  needs_seed_ = true;
}

void JobCache::on_gap() { needs_seed_ = true; }

bool JobCache::live(int64_t now_ms) const { return now_ms - last_heartbeat_ms_.load() <= silence_ms_; }

Result<flatbuffers::DetachedBuffer> JobCache::all_jobs() {
  fb::JobListT all;
  uint64_t after = 0;
  while (true) {
    auto r = backends_.call_fresh(Service::kScheduler, fb::RequestBody::QueryJobs, [after](auto& fbb) {
      fb::QueryJobsBuilder q(fbb);
      q.add_limit(kAllJobs);
      q.add_after_job_id(after);
      return q.Finish().Union();
    });
    if (!r) return r.status();
    const auto* page = r->body<fb::JobList>();
    if (!page) return Status::internal("the scheduler answered QueryJobs with an unexpected reply");
    if (page->jobs())
      for (const auto* j : *page->jobs()) all.jobs.emplace_back(j->UnPack());
    if (!page->truncated() || page->next_after_job_id() <= after) break;
    after = page->next_after_job_id();
  }
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::JobList::Pack(fbb, &all));
  return fbb.Release();
}

Status JobCache::read(const std::function<void(const JobTable&)>& fn) {
  if (!live(monotonic_ms())) {
    ++direct_reads;
    auto r = all_jobs();
    if (!r) return r.status();
    const auto* list = flatbuffers::GetRoot<fb::JobList>(r->data());
    JobTable t;
    t.seed(*list);
    fn(t);
    return Status::success();
  }
  std::lock_guard seed_lock(seed_mu_);
  if (needs_seed_.exchange(false)) {
    uint64_t since = 0;
    {
      std::lock_guard lock(mu_);
      since = table_.begin_seed();
    }
    auto r = all_jobs();
    if (!r) {
      needs_seed_ = true;
      return r.status();
    }
    const auto* list = flatbuffers::GetRoot<fb::JobList>(r->data());
    ++seeds;
    std::lock_guard lock(mu_);
    table_.seed(*list, since);
    spdlog::debug("jobs: table seeded with {} jobs", table_.size());
  }
  refresh_starts();
  std::lock_guard lock(mu_);
  fn(table_);
  return Status::success();
}

// A job.state event to Running does not say when the run started (the agent
// does): read those few records, so queue waits equal the scheduler's.
void JobCache::refresh_starts() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lock(mu_);
    ids = table_.inexact_starts(kStartRefreshesPerRead);
  }
  for (auto id : ids) {
    auto r = backends_.call_fresh(Service::kScheduler, fb::RequestBody::GetJob,
                                  [&](auto& fbb) { return fb::CreateGetJob(fbb, id).Union(); });
    if (!r && r.status().code() == ErrorCode::Unavailable) return;  // the stand-in stays
    const auto* rec = r ? r->body<fb::JobRecord>() : nullptr;
    std::lock_guard lock(mu_);
    table_.set_start(id, rec ? rec->start_time_ns() : 0);
  }
}

}  // namespace trainyard::gateway
