// Billing's other duty: the site's directory of users, accounts and roles
// (EditDirectory, GetDirectory, published whole as directory.changed) and
// the audit trail every service writes (audit.*, kept here for QueryAudit).
#include <spdlog/spdlog.h>

#include "shell.h"
#include "storage/keys.h"
#include "wire/fb_str.h"

namespace trainyard::billing {

using storage::Key;
using storage::KeyReader;

namespace {

constexpr size_t kMaxOps = 100'000;
constexpr uint32_t kMaxAuditPage = 1000;
constexpr size_t kMaxAuditScan = 200'000;  // records looked at per QueryAudit (filters may skip most)

std::string summary(const security::Directory& d) {
  return std::to_string(d.users.size()) + " users, " + std::to_string(d.accounts.size()) + " accounts";
}

}  // namespace

void BillingShell::on_edit_directory(const fb::Request& req, rpc::Responder& r) {
  if (auto c = caller(r); !c.admin()) return r.error(c.refuse("admins", "edit the directory"));
  auto* q = req.body_as_EditDirectory();
  std::vector<fb::DirectoryOpT> ops;
  if (q->ops()) {
    if (q->ops()->size() > kMaxOps) {
      return r.error(Status::exhausted("EditDirectory.ops: " + std::to_string(q->ops()->size()) + " ops, at most " +
                                       std::to_string(kMaxOps) + " in one request"));
    }
    ops.reserve(q->ops()->size());
    for (const auto* op : *q->ops()) {
      fb::DirectoryOpT o;
      if (op) op->UnPackTo(&o);
      ops.push_back(std::move(o));
    }
  }
  auto next = security::apply_ops(directory_->durable(), ops, q->replace());
  if (!next) return r.error(next.status());
  auto d = std::move(next).value();
  if (d == directory_->durable()) {
    // Nothing changed (an import run twice): no new version, no event.
    auto view = security::to_view(d);
    return r.ok(fb::ReplyBody::DirectoryView, fb::DirectoryView::Pack(r.builder(), &view).Union());
  }
  d.version = directory_->durable().version + 1;
  auto& batch = runtime_.batch();
  directory_->set(d, batch);
  auto view = security::to_view(d);
  auto& pb = publisher_->builder();
  publisher_->append(batch, security::kDirectoryTopic, fb::Payload::DirectoryView,
                     fb::DirectoryView::Pack(pb, &view).Union());
  spdlog::info("directory version {} by {}: {}", d.version, r.principal(), summary(d));
  r.audit("directory version " + std::to_string(d.version) + " (" + std::to_string(ops.size()) + " ops" +
          (q->replace() ? ", replaced" : "") + "; " + summary(d) + ")");
  r.ok(fb::ReplyBody::DirectoryView, fb::DirectoryView::Pack(r.builder(), &view).Union());
}

void BillingShell::on_get_directory(const fb::Request&, rpc::Responder& r) {
  // Everyone may read who belongs where (as sacctmgr show associations):
  // the durable directory joined with the config's bootstrap.
  auto view = security::to_view(directory_->current());
  r.ok(fb::ReplyBody::DirectoryView, fb::DirectoryView::Pack(r.builder(), &view).Union());
}

// Key: time_ns, then the record's stream and seq (unique, and replays of
// the same event overwrite it instead of adding a copy).
void BillingShell::keep_audit(const bus::Event& e, storage::Batch& batch) {
  std::string key = Key().i64(e.time_ns()).str(e.stream()).u64(e.seq()).bytes();
  batch.put(audit_cf_, key, std::string_view(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size()));
}

void BillingShell::trim_audit() {
  int64_t cutoff = clock_.now_ns() - options_.audit_keep_days * 86'400'000'000'000;
  runtime_.batch().del_range(audit_cf_, Key().i64(INT64_MIN).bytes(), Key().i64(cutoff).bytes());
}

void BillingShell::on_record_audit(const fb::Request& req, rpc::Responder& r) {
  // Only a forwarder's key: anyone else could fill the trail with records
  // naming whom they like.
  if (r.principal() != bus::kBusPrincipal) {
    return r.error(Status::permission_denied(
        "bus forwarders: " + (r.principal().empty() ? std::string("an unknown key") : r.principal()) +
        " may not record audit entries for others (RecordAudit is the forwarders')"));
  }
  auto* q = req.body_as_RecordAudit();
  size_t n = 0;
  if (q->records()) {
    for (const auto* rec : *q->records()) {
      if (!rec || ++n > 256) break;
      fb::AuditRecordT t;
      rec->UnPackTo(&t);
      t.service = "bus";  // whatever it says: the forwarders are the bus
      audit_->relay(t);
    }
  }
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void BillingShell::on_query_audit(const fb::Request& req, rpc::Responder& r) {
  if (auto c = caller(r); !c.admin()) return r.error(c.refuse("admins", "read the audit trail"));
  auto* q = req.body_as_QueryAudit();
  uint32_t limit = q->limit() == 0 ? 100 : std::min(q->limit(), kMaxAuditPage);
  std::string principal = str(q->principal());
  int64_t until = q->until_ns() > 0 ? q->until_ns() : INT64_MAX;
  std::string low = Key().i64(q->since_ns()).bytes();
  std::string high = q->before() && q->before()->size() > 0 ? q->before()->str() : Key().i64(until).bytes();
  if (high > Key().i64(until).bytes()) high = Key().i64(until).bytes();

  fb::AuditListT list;
  auto it = store_.iterator(audit_cf_);
  size_t scanned = 0;
  std::string next;
  for (it->SeekForPrev(high); it->Valid(); it->Prev()) {
    auto k = it->key().ToStringView();
    if (k >= high) continue;  // SeekForPrev lands on `high` itself when it exists
    if (k < low) break;
    if (list.entries.size() >= limit || ++scanned > kMaxAuditScan) {
      next = std::string(k) + '\xff';  // resume at this record (exclusive bound just past it)
      break;
    }
    auto v = it->value();
    flatbuffers::Verifier ver(reinterpret_cast<const uint8_t*>(v.data()), v.size());
    if (!fb::VerifyEnvelopeBuffer(ver)) continue;
    const auto* env = fb::GetEnvelope(v.data());
    const auto* rec = env->payload_as_AuditRecord();
    if (!rec) continue;
    if (q->refused_only() && rec->allowed()) continue;
    if (!principal.empty() && str(rec->principal()) != principal) continue;
    auto entry = std::make_unique<fb::AuditEntryT>();
    entry->time_ns = env->time_ns();
    entry->record.reset(rec->UnPack());
    list.entries.push_back(std::move(entry));
  }
  if (!it->status().ok()) {
    return r.error(store_.read_failed(it->status()));
  }
  list.next_before = next;
  r.ok(fb::ReplyBody::AuditList, fb::AuditList::Pack(r.builder(), &list).Union());
}

}  // namespace trainyard::billing
