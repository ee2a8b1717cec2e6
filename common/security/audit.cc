#include "security/audit.h"

#include <algorithm>

#include "security/site.h"
#include "util/runtime.h"

namespace trainyard::security {
namespace {

constexpr int64_t kHandshakeEveryNs = 60'000'000'000;

}  // namespace

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
  Entry e;
  e.principal = r.principal();
  if (r.peer() != r.principal()) e.peer = r.peer();
  e.action = fb::EnumNameRequestBody(req.body_type());
  e.target = r.audit_target();
  e.allowed = r.code() == fb::ErrorCode::Ok;
  e.code = r.code();
  e.message = r.message();
  publish(e);
}

void AuditTrail::drain_site() {
  auto* site = Site::current();
  if (!site) return;
  int64_t now = clock_.now_ns();
  if (handshake_logged_ns_.size() > 4096) handshake_logged_ns_.clear();
  for (auto& k : site->take_keyring_changes()) {
    Entry e;
    e.action = "Keyring";
    e.target = k.principal;
    e.allowed = true;
    e.message = k.change + (k.key.empty() ? "" : " (key " + k.key + ")") + " in " + service_ +
                "'s authorized keys";
    publish(e);
  }
  for (auto& h : site->take_refusals()) {
    auto& last = handshake_logged_ns_[h.key + "@" + h.address];
    if (last != 0 && now - last < kHandshakeEveryNs) {
      suppressed_ += static_cast<uint32_t>(h.count);
      stats_.suppressed += h.count;
      continue;
    }
    last = now;
    suppressed_ += static_cast<uint32_t>(h.count - 1);
    Entry e;
    e.action = "Handshake";
    e.target = (h.key.empty() ? std::string("a plaintext peer") : "key " + h.key) + " from " + h.address;
    e.code = fb::ErrorCode::PermissionDenied;
    e.message = h.why;
    publish(e);
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

void AuditTrail::relay(const fb::AuditRecordT& rec) {
  auto& b = publisher_.builder();
  auto r = fb::CreateAuditRecordDirect(b, rec.principal.c_str(), rec.peer.c_str(), rec.service.c_str(),
                                       rec.action.c_str(), rec.target.c_str(), rec.allowed, rec.code,
                                       rec.message.c_str(), rec.suppressed);
  publisher_.append(runtime_.batch(), std::string(kAuditPrefix) + (rec.allowed ? "action" : "refused"),
                    fb::Payload::AuditRecord, r.Union());
  ++stats_.recorded;
}

void AuditTrail::publish(const Entry& e) {
  auto& b = publisher_.builder();
  auto rec = fb::CreateAuditRecordDirect(b, e.principal.c_str(), e.peer.c_str(), service_.c_str(), e.action.c_str(),
                                         e.target.c_str(), e.allowed, e.code, e.message.c_str(), suppressed_);
  publisher_.append(runtime_.batch(), std::string(kAuditPrefix) + (e.allowed ? "action" : "refused"),
                    fb::Payload::AuditRecord, rec.Union());
  suppressed_ = 0;
  ++stats_.recorded;
}

}  // namespace trainyard::security
