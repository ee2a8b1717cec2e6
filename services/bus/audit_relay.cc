// The forwarder's refusals into the audit trail (audit_relay.h).
#include "audit_relay.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include <spdlog/spdlog.h>

#include "bus/event.h"
#include "rpc/client.h"
#include "security/audit.h"
#include "security/site.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::bus {

namespace {
constexpr size_t kMaxWaiting = 1024;  // records kept while billing is away (then merged into one)
constexpr size_t kPerCall = 256;
}  // namespace

struct AuditRelay::Impl {
  Impl(zmq::context_t& c, Forwarder& f) : ctx(c), fwd(f), thread([this] { loop(); }) {}
  ~Impl() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    thread.join();
  }

  using Key = std::tuple<std::string, std::string, std::string, bool>;  // principal, action, target, allowed
  void add(fb::AuditRecordT r) {
    Key k{r.principal, r.action, r.target, r.allowed};
    if (auto it = waiting.find(k); it != waiting.end()) {
      it->second.suppressed += 1 + r.suppressed;
      return;
    }
    if (waiting.size() >= kMaxWaiting) {
      auto& more = waiting[Key{"", "Publish", "(more)", false}];
      if (more.action.empty()) {
        more.service = "bus";
        more.action = "Publish";
        more.target = "(more)";
        more.code = fb::ErrorCode::PermissionDenied;
        more.message = "more refusals than are kept one by one while billing was away";
      } else {
        ++more.suppressed;
      }
      return;
    }
    waiting.emplace(k, std::move(r));
  }

  void collect() {
    for (auto& x : fwd.take_refusals()) {
      fb::AuditRecordT r;
      r.principal = x.principal;
      r.service = "bus";
      r.action = x.action;
      r.target = x.target;
      r.code = fb::ErrorCode::PermissionDenied;
      r.message = x.why;
      r.suppressed = static_cast<uint32_t>(x.count - 1);
      add(std::move(r));
    }
    auto* site = security::Site::current();
    if (!site) return;
    for (auto& h : site->take_refusals()) add(security::handshake_record(h, "bus"));
    for (auto& k : site->take_keyring_changes()) add(security::keyring_record(k, "bus"));
  }

  void send() {
    std::string endpoint = fwd.audit_endpoint();
    if (waiting.empty() || endpoint.empty()) return;
    if (!client || endpoint != client_endpoint) {
      rpc::ClientOptions o;
      o.timeout_ms = 2000;
      o.tries = 1;
      o.principal = kBusPrincipal;
      o.server = "service:billing";
      client = std::make_unique<rpc::Client>(ctx, "billing", endpoint, o);
      client_endpoint = endpoint;
    }
    std::vector<Key> sent;
    auto r = client->call(fb::RequestBody::RecordAudit, [&](flatbuffers::FlatBufferBuilder& b) {
      std::vector<flatbuffers::Offset<fb::AuditRecord>> recs;
      for (auto& [k, rec] : waiting) {
        if (recs.size() >= kPerCall) break;
        recs.push_back(fb::AuditRecord::Pack(b, &rec));
        sent.push_back(k);
      }
      return fb::CreateRecordAudit(b, b.CreateVector(recs)).Union();
    });
    if (!r) {
      if (++failures % 60 == 1) {
        spdlog::warn("bus: {} audit records wait for billing at {}: {}", waiting.size(), endpoint, r.status().message());
      }
      client.reset();  // a fresh socket next time
      return;
    }
    failures = 0;
    for (auto& k : sent) waiting.erase(k);
  }

  void loop() {
    std::unique_lock lock(mu);
    while (!stop) {
      cv.wait_for(lock, std::chrono::seconds(1));
      lock.unlock();
      collect();
      send();
      lock.lock();
    }
  }

  zmq::context_t& ctx;
  Forwarder& fwd;
  std::map<Key, fb::AuditRecordT> waiting;
  std::unique_ptr<rpc::Client> client;
  std::string client_endpoint;
  uint64_t failures = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;  // last: started once the rest is built
};

AuditRelay::AuditRelay(zmq::context_t& ctx, Forwarder& forwarder) : impl_(std::make_unique<Impl>(ctx, forwarder)) {}

AuditRelay::~AuditRelay() = default;

}  // namespace trainyard::bus
