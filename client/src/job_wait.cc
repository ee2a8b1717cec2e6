// Client::wait and Client::watch: following jobs through their job.state
// events on the bus (when one is configured) and the scheduler's records.
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include <zmq.hpp>

#include "bus/event.h"
#include "rpc/client.h"
#include "trainyard/client.h"
#include "util/clock.h"

namespace trainyard::client {
namespace {

using std::chrono::milliseconds;

// A SUB socket on the bus for job.* events; none when no bus is configured.
std::unique_ptr<zmq::socket_t> job_subscriber(zmq::context_t& ctx, const std::vector<std::string>& bus,
                                              const std::string& prefix, const security::Site* site) {
  if (bus.empty()) return nullptr;
  auto sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
  if (!security::secure_client(*sock, bus::kBusPrincipal, site)) return nullptr;
  sock->set(zmq::sockopt::linger, 0);
  sock->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(bus::kDefaultMaxMessageBytes));
  sock->set(zmq::sockopt::subscribe, prefix);
  for (auto& e : bus) {
    try {
      sock->connect(e);
    } catch (const zmq::error_t&) {
      return nullptr;  // a malformed endpoint: do without events
    }
  }
  return sock;
}

// Reads one bus message if one waits; fills `out` when it is a job event.
bool read_job_event(zmq::socket_t& sock, JobEvent* out) {
  zmq::message_t topic, body;
  if (!sock.recv(topic, zmq::recv_flags::dontwait)) return false;
  if (!topic.more()) return true;
  (void)sock.recv(body);
  while (body.more()) {
    zmq::message_t extra;
    (void)sock.recv(extra);
  }
  std::string_view t(static_cast<const char*>(topic.data()), topic.size());
  std::span<const uint8_t> bytes(static_cast<const uint8_t*>(body.data()), body.size());
  auto checked = bus::verify_event(t, bytes);
  if (!checked) return true;
  const bus::Event& e = *checked;
  JobEvent je;
  je.topic = std::string(t);
  je.stream = std::string(e.stream());
  je.seq = e.seq();
  je.time_ns = e.time_ns();
  if (auto* s = e.as<fb::JobStateChanged>()) {
    je.job_id = s->job_id();
    je.state.emplace();
    s->UnPackTo(&*je.state);
  } else if (auto* s = e.as<fb::JobSubmitted>()) {
    je.job_id = s->job_id();
    je.submitted.emplace();
    s->UnPackTo(&*je.submitted);
  } else {
    return true;
  }
  *out = std::move(je);
  return true;
}

constexpr int64_t kPollMs = 500;
constexpr int64_t kRideOutMs = 30'000;  // a restarting scheduler may be away this long

// One wait(): the jobs' newest records, refreshed when an event names one
// of them and all of them every kPollMs.
class JobWaiter {
 public:
  JobWaiter(Client& client, const std::vector<uint64_t>& job_ids, const Client::Progress& progress)
      : client_(client), job_ids_(job_ids), progress_(progress) {}

  // The first look must succeed: a wrong id or a scheduler that is not
  // there is an error now, not after the timeout.
  Status first_look() {
    for (auto id : job_ids_) {
      if (records_.count(id)) continue;
      auto r = client_.status(id);
      if (!r) return r.status();
      records_[id] = std::move(*r);
    }
    return Status::success();
  }

  // Until every job is terminal, `deadline` (monotonic ms) passes, or the
  // scheduler stays away longer than kRideOutMs.
  Result<std::vector<fb::JobRecordT>> run(zmq::socket_t* sub, int64_t deadline, milliseconds timeout);

 private:
  std::vector<fb::JobRecordT> ordered() {
    std::vector<fb::JobRecordT> out;
    for (auto id : job_ids_) out.push_back(records_[id]);
    return out;
  }
  bool all_done() const {
    for (auto& [id, r] : records_) {
      if (!is_terminal(r.state)) return false;
    }
    return true;
  }
  std::set<uint64_t> unfinished() const {
    std::set<uint64_t> ids;
    for (auto& [id, r] : records_) {
      if (!is_terminal(r.state)) ids.insert(id);
    }
    return ids;
  }
  // Waits up to `wait_ms` for events; the unfinished jobs they name.
  std::set<uint64_t> woken(zmq::socket_t* sub, int64_t wait_ms);
  // Refreshes `ids`; arrays are read in one QueryJobs per array.
  Status refresh(const std::set<uint64_t>& ids);
  Status refresh_arrays(const std::set<uint64_t>& ids, std::set<uint64_t>* done, bool* changed);

  Client& client_;
  const std::vector<uint64_t>& job_ids_;
  const Client::Progress& progress_;
  std::map<uint64_t, fb::JobRecordT> records_;
};

std::set<uint64_t> JobWaiter::woken(zmq::socket_t* sub, int64_t wait_ms) {
  std::set<uint64_t> ids;
  if (!sub) {
    std::this_thread::sleep_for(milliseconds(wait_ms));
    return ids;
  }
  zmq::pollitem_t item{static_cast<void*>(*sub), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, milliseconds(wait_ms));
  JobEvent e;
  for (int i = 0; i < 10'000 && read_job_event(*sub, &e); ++i) {
    if (e.job_id && records_.count(e.job_id) && !is_terminal(records_[e.job_id].state)) ids.insert(e.job_id);
    e.job_id = 0;
  }
  return ids;
}

Status JobWaiter::refresh_arrays(const std::set<uint64_t>& ids, std::set<uint64_t>* done, bool* changed) {
  std::map<uint64_t, std::vector<uint64_t>> arrays;
  for (auto id : ids) {
    if (records_[id].array_job_id != 0) arrays[records_[id].array_job_id].push_back(id);
  }
  for (auto& [array, members] : arrays) {
    if (members.size() < 2) continue;
    JobFilter f;
    f.array_job_id = array;
    f.limit = 1'000'000;
    auto l = client_.list(f);
    if (!l) return l.status();
    for (auto& rec : *l) {
      auto it = records_.find(rec.job_id);
      if (it == records_.end() || !ids.count(rec.job_id)) continue;
      if (it->second.state != rec.state) *changed = true;
      it->second = std::move(rec);
      done->insert(it->first);
    }
  }
  return Status::success();
}

Status JobWaiter::refresh(const std::set<uint64_t>& ids) {
  bool changed = false;
  std::set<uint64_t> done;
  if (auto s = refresh_arrays(ids, &done, &changed); !s) return s;
  for (auto id : ids) {
    if (done.count(id)) continue;
    auto r = client_.status(id);
    if (!r) return r.status();
    if (r->state != records_[id].state) changed = true;
    records_[id] = std::move(*r);
  }
  if (changed && progress_) progress_(ordered());
  return Status::success();
}

Result<std::vector<fb::JobRecordT>> JobWaiter::run(zmq::socket_t* sub, int64_t deadline, milliseconds timeout) {
  if (progress_) progress_(ordered());
  int64_t next_poll = monotonic_ms() + kPollMs;
  int64_t unavailable_since = 0;
  while (!all_done()) {
    int64_t now = monotonic_ms();
    if (now >= deadline) {
      return Status(ErrorCode::DeadlineExceeded,
                    "jobs still not finished after " + std::to_string(timeout.count() / 1000) + " s");
    }
    std::set<uint64_t> ids = woken(sub, std::max<int64_t>(0, std::min(next_poll, deadline) - now));
    if (monotonic_ms() >= next_poll) {
      ids = unfinished();
      next_poll = monotonic_ms() + kPollMs;
    }
    if (ids.empty()) continue;
    auto s = refresh(ids);
    if (s.code() == ErrorCode::Unavailable) {
      if (unavailable_since == 0) unavailable_since = monotonic_ms();
      if (monotonic_ms() - unavailable_since > kRideOutMs) return s;
      continue;
    }
    if (!s) return s;
    unavailable_since = 0;
  }
  return ordered();
}

}  // namespace

Result<std::vector<fb::JobRecordT>> Client::wait(const std::vector<uint64_t>& job_ids, milliseconds timeout,
                                                 const Progress& progress) {
  const int64_t start = monotonic_ms();
  const int64_t deadline = timeout.count() > 0 ? start + timeout.count() : INT64_MAX;
  // Subscribed before the first look, so that no change after it is missed.
  auto sub = job_subscriber(*ctx_, endpoints_.bus, "job.state", site_.get());
  JobWaiter waiter(*this, job_ids, progress);
  if (auto s = waiter.first_look(); !s) return s;
  return waiter.run(sub.get(), deadline, timeout);
}

Status Client::watch(const std::vector<uint64_t>& job_ids, const std::function<bool(const JobEvent&)>& on_event,
                     milliseconds timeout) {
  // job.state only: job.submitted carries whole specs, which the bus gives
  // services alone (a user's key may subscribe to job.state and ops.*).
  auto sub = job_subscriber(*ctx_, endpoints_.bus, "job.state", site_.get());
  if (!sub) return Status::invalid("no bus endpoint to watch events on (set bus.backend or --bus)");
  std::set<uint64_t> wanted(job_ids.begin(), job_ids.end());
  std::map<std::string, uint64_t> seen;  // stream -> newest seq, to drop the second forwarder's copy
  const int64_t deadline = timeout.count() > 0 ? monotonic_ms() + timeout.count() : INT64_MAX;
  while (true) {
    int64_t left = deadline - monotonic_ms();
    if (left <= 0) return Status(ErrorCode::DeadlineExceeded, "watch ended after its timeout");
    zmq::pollitem_t item{static_cast<void*>(*sub), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, milliseconds(std::min<int64_t>(left, 1000)));
    JobEvent e;
    while (read_job_event(*sub, &e)) {
      if (e.job_id == 0) continue;
      auto& last = seen[e.stream];
      if (e.seq <= last) continue;
      last = e.seq;
      if (!wanted.empty() && !wanted.count(e.job_id)) continue;
      if (!on_event(e)) return Status::success();
      e = JobEvent{};
    }
  }
}

}  // namespace trainyard::client
