#include "security/audit.h"

#include <algorithm>

#include "security/site.h"
#include "util/runtime.h"

namespace trainyard::security {
namespace {

constexpr int64_t kHandshakeEveryNs = 60'000'000'000;

}  // namespace

fb::AuditRecordT keyring_record(const KeyringChange& k, const std::string& service) {
  fb::AuditRecordT r;
  r.service = service;
  r.action = "Keyring";
  r.target = k.principal;
  r.allowed = true;
  r.message = k.change + (k.key.empty() ? "" : " (key " + k.key + ")") + " in " + service + "'s authorized keys";
  return r;
}

fb::AuditRecordT handshake_record(const Refusal& h, const std::string& service) {
  fb::AuditRecordT r;
  r.service = service;
  r.action = "Handshake";
  r.target = (h.key.empty() ? std::string("a plaintext peer") : "key " + h.key) + " from " + h.address;
  r.code = fb::ErrorCode::PermissionDenied;
  r.message = h.why;
  r.suppressed = static_cast<uint32_t>(h.count - 1);
  return r;
}

AuditTrail::AuditTrail(bus::Publisher& publisher, Runtime& runtime, const Clock& clock, std::string service,
                       double refusals_per_s)
    : publisher_(publisher),
      runtime_(runtime),
      clock_(clock),
      service_(std::move(service)),
      rate_(std::max(refusals_per_s, 0.1)),
      tokens_(rate_ * 10) {
  if (Site::current()) runtime_.every(1000, [this] { drain_site(); });
}

void AuditTrail::attach(rpc::Server& server) {
  servers_.push_back(&server);
  server.observe([this](const fb::Request& req, const rpc::Responder& r) { observe(req, r); });
}

bool AuditTrail::take_token() {
  int64_t now = clock_.now_ns();
  if (refill_ns_ != 0) tokens_ = std::min(rate_ * 10, tokens_ + rate_ * static_cast<double>(now - refill_ns_) / 1e9);
  refill_ns_ = now;
  if (tokens_ < 1) {
    ++suppressed_;
    ++stats_.suppressed;
    return false;
  }
  tokens_ -= 1;
  return true;
}

void AuditTrail::observe(const fb::Request& req, const rpc::Responder& r) {
  bool refused = r.code() == fb::ErrorCode::PermissionDenied;
  if (refused) ++denied_;
  if (!refused && !r.audited()) return;
  if (refused && !take_token()) return;
  fb::AuditRecordT e;
  e.principal = r.principal();
  if (r.peer() != r.principal()) e.peer = r.peer();
  e.action = fb::EnumNameRequestBody(req.body_type());
  e.target = r.audit_target();
  e.allowed = r.code() == fb::ErrorCode::Ok;
  e.code = r.code();
  e.message = r.message();
  publish(std::move(e));
}

void AuditTrail::drain_site() {
  auto* site = Site::current();
  if (!site) return;
  int64_t now = clock_.now_ns();
  if (handshake_logged_ns_.size() > 4096) handshake_logged_ns_.clear();
  for (auto& k : site->take_keyring_changes()) publish(keyring_record(k, service_));
  for (auto& h : site->take_refusals()) {
    auto& last = handshake_logged_ns_[h.key + "@" + h.address];
    if (last != 0 && now - last < kHandshakeEveryNs) {
      suppressed_ += static_cast<uint32_t>(h.count);
      stats_.suppressed += h.count;
      continue;
    }
    last = now;
    publish(handshake_record(h, service_));
  }
}

std::vector<std::pair<std::string, double>> AuditTrail::gauges() const {
  std::vector<std::pair<std::string, double>> g;
  auto add = [&g](const char* name, uint64_t v) { g.emplace_back(name, static_cast<double>(v)); };
  if (auto* site = Site::current()) {
    add("security_handshakes_accepted", site->counters().accepted.load());
    add("security_handshakes_refused", site->counters().refused.load());
    add("security_keyring_reloads", site->counters().reloads.load());
  }
  uint64_t unauthenticated = 0;
  for (auto* s : servers_) unauthenticated += s->stats().unauthenticated;
  add("security_requests_unauthenticated", unauthenticated);
  add("security_requests_denied", denied_);
  add("audit_records", stats_.recorded);
  add("audit_refusals_suppressed", stats_.suppressed);
  return g;
}

void AuditTrail::relay(const fb::AuditRecordT& rec) { append(rec); }

void AuditTrail::publish(fb::AuditRecordT rec) {
  rec.service = service_;
  rec.suppressed += suppressed_;
  suppressed_ = 0;
  append(rec);
}

void AuditTrail::append(const fb::AuditRecordT& rec) {
  auto& b = publisher_.builder();
  auto r = fb::CreateAuditRecordDirect(b, rec.principal.c_str(), rec.peer.c_str(), rec.service.c_str(),
                                       rec.action.c_str(), rec.target.c_str(), rec.allowed, rec.code,
                                       rec.message.c_str(), rec.suppressed);
  publisher_.append(runtime_.batch(), std::string(kAuditPrefix) + (rec.allowed ? "action" : "refused"),
                    fb::Payload::AuditRecord, r.Union());
  ++stats_.recorded;
}

}  // namespace trainyard::security
