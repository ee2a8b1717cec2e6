#include "core/budget.h"

#include "storage/keys.h"

namespace trainyard::billing {

using storage::Key;
using storage::KeyReader;

std::string AccountState::encode() const {
  Key k;
  k.u32(budget ? 1 : 0);
  if (budget) {
    k.i64(budget->monthly_micros).u32(budget->soft_percent).u32(budget->hard ? 1 : 0).u32(budget->stop_running ? 1 : 0);
  }
  k.u32(blocked ? 1 : 0).u32(blocked_month).u32(warned_month);
  return k.bytes();
}

std::optional<AccountState> AccountState::decode(std::string_view value) {
  try {
    KeyReader r(value);
    AccountState s;
    if (r.u32() == 1) {
      Budget b;
      b.monthly_micros = r.i64();
      b.soft_percent = r.u32();
      b.hard = r.u32() == 1;
      b.stop_running = r.u32() == 1;
      s.budget = b;
    }
    s.blocked = r.u32() == 1;
    s.blocked_month = r.u32();
    s.warned_month = r.u32();
    return s;
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

std::vector<AccountEvent> evaluate_budget(std::string_view account, AccountState& state, uint32_t month,
                                          int64_t spent) {
  std::vector<AccountEvent> out;
  const Budget* b = state.budget ? &*state.budget : nullptr;
  int64_t limit = b ? b->monthly_micros : 0;
  auto event = [&](AccountEvent::Kind kind) {
    AccountEvent e;
    e.kind = kind;
    e.account = std::string(account);
    e.month = month;
    e.spent_micros = spent;
    e.limit_micros = limit;
    e.stop_running = b && b->stop_running;
    return e;
  };

  // Soft limit: floor(limit * percent / 100), exact in 128 bits.
  bool over_soft = false;
  if (b && b->soft_percent > 0) {
    auto soft = static_cast<__int128>(limit) * b->soft_percent / 100;
    over_soft = spent >= soft;
  }
  if (over_soft && state.warned_month != month) {
    out.push_back(event(AccountEvent::Kind::kWarning));
    out.back().limit_micros = static_cast<int64_t>(static_cast<__int128>(limit) * b->soft_percent / 100);
    state.warned_month = month;
  } else if (!over_soft && state.warned_month == month) {
    state.warned_month = 0;  // raised above the spend: warn again when crossed again
  }

  bool should_block = b && b->hard && spent >= limit;
  if (should_block && !(state.blocked && state.blocked_month == month)) {
    out.push_back(event(AccountEvent::Kind::kBlocked));
    out.back().blocked = true;
    state.blocked = true;
    state.blocked_month = month;
  } else if (!should_block && state.blocked) {
    out.push_back(event(AccountEvent::Kind::kBlocked));
    out.back().blocked = false;
    state.blocked = false;
    state.blocked_month = 0;
  }
  return out;
}

}  // namespace trainyard::billing
