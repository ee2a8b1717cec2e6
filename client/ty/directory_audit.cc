// `ty admin audit`: the audit trail billing keeps (every admin action, every
// refused request), newest first, page by page.
#include <iostream>

#include <nlohmann/json.hpp>

#include "directory.h"
#include "format.h"
#include "util/clock.h"

namespace trainyard::ty {
namespace {

struct AuditFlags {
  std::string since, until, user, before;
  uint32_t limit = 100;
  bool refused = false, all = false, json = false;
};

nlohmann::json entry_json(const fb::AuditEntryT& e) {
  static const fb::AuditRecordT kNone;
  const auto& r = e.record ? *e.record : kNone;
  return {{"time_ns", e.time_ns},  {"principal", r.principal}, {"peer", r.peer},
          {"service", r.service},  {"action", r.action},       {"target", r.target},
          {"allowed", r.allowed},  {"code", fb::EnumNameErrorCode(r.code)},
          {"message", r.message},  {"suppressed", r.suppressed}};
}

// TIME PRINCIPAL SERVICE ACTION TARGET RESULT.
std::vector<std::string> entry_row(const nlohmann::json& j) {
  std::string who = j["principal"], peer = j["peer"];
  if (!peer.empty() && peer != who) who += " (via " + peer + ")";
  std::string result = j["allowed"].get<bool>() ? "allowed" : "refused: " + j["message"].get<std::string>();
  if (auto n = j["suppressed"].get<uint32_t>(); n > 0) result += " (+" + std::to_string(n) + " like it not listed)";
  std::string target = j["target"];
  return {format_time(j["time_ns"].get<int64_t>()), who, j["service"], j["action"], target.empty() ? "-" : target,
          result};
}

Result<client::AuditQuery> audit_query(const AuditFlags& f) {
  client::AuditQuery q;
  int64_t now = SystemClock().now_ns();
  if (!f.since.empty() && !parse_time_or_age(f.since, now, &q.since_ns)) {
    return Status::invalid("--since '" + f.since + "': use an age (30m, 12h, 7d, 2w), 'now' or a date "
                                                   "(YYYY-MM-DD[THH:MM[:SS]], UTC)");
  }
  if (!f.until.empty() && !parse_time_or_age(f.until, now, &q.until_ns)) {
    return Status::invalid("--until '" + f.until + "': use an age (30m, 12h, 7d, 2w), 'now' or a date "
                                                   "(YYYY-MM-DD[THH:MM[:SS]], UTC)");
  }
  if (q.until_ns != 0 && q.until_ns < q.since_ns) return Status::invalid("--until is before --since");
  q.principal = f.user.empty() || f.user.find(':') != std::string::npos ? f.user : "user:" + f.user;
  q.refused_only = f.refused;
  q.limit = f.limit;
  q.before = f.before;
  return q;
}

int audit(Context& ctx, const AuditFlags& f) {
  auto q = audit_query(f);
  if (!q) return fail(q.status());
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  nlohmann::json entries = nlohmann::json::array();
  std::string next;
  for (;;) {  // one page, or with --all every page
    auto page = c->audit(*q);
    if (!page) return fail(page.status());
    for (auto& e : page->entries) entries.push_back(entry_json(*e));
    next = page->next_before;
    if (!f.all || next.empty() || next == q->before) break;
    q->before = next;
  }
  if (f.all) next.clear();
  if (f.json) {
    std::cout << nlohmann::json{{"entries", entries}, {"next_before", next}}.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"TIME", "PRINCIPAL", "SERVICE", "ACTION", "TARGET", "RESULT"});
  for (auto& j : entries) t.add(entry_row(j));
  std::cout << t.render();
  if (!next.empty()) std::cerr << "(older entries: --all, or --before " << next << ")\n";
  return kExitOk;
}

}  // namespace

void add_audit_command(CLI::App& admin, Context& ctx, Action& action) {
  auto f = std::make_shared<AuditFlags>();
  auto* cmd = admin.add_subcommand("audit", "The audit trail: admin actions and refused requests, newest first");
  cmd->add_option("--since", f->since, "From this time: an age (30m, 12h, 7d, 2w) or a date (YYYY-MM-DD[THH:MM], UTC)");
  cmd->add_option("--until", f->until, "Up to this time (same forms; default now)");
  cmd->add_option("-u,--user", f->user, "Only what this user asked (NAME, or a principal such as agent:gpu001)");
  cmd->add_flag("--refused", f->refused, "Only refused requests");
  cmd->add_option("--limit", f->limit, "Entries per page (default 100)")->check(CLI::Range(1u, 100000u));
  cmd->add_flag("--all", f->all, "Every page, not only the newest");
  cmd->add_option("--before", f->before, "The page older than this mark (printed after a page)");
  cmd->add_flag("--json", f->json, "Print JSON: {entries: [{time_ns, principal, peer, service, action, target, "
                                   "allowed, code, message, suppressed}], next_before}");
  cmd->callback([&ctx, &action, f] { action = [&ctx, f] { return audit(ctx, *f); }; });
}

}  // namespace trainyard::ty
