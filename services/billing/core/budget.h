// Budgets per account and month: compares what an account spent this month
// with its budget and with what billing last announced, and says which
// account.warning / account.blocked events to publish.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trainyard::billing {

struct Budget {
  int64_t monthly_micros = 0;   // > 0
  uint32_t soft_percent = 80;   // warn at this share of monthly_micros; 0: never
  bool hard = false;            // block new jobs at 100 %
  bool stop_running = false;    // ... and ask the scheduler to stop running ones
};

// What billing knows and last said about an account.
struct AccountState {
  std::optional<Budget> budget;
  bool blocked = false;         // the last account.blocked said blocked=true
  uint32_t blocked_month = 0;   // yyyymm of that block
  uint32_t warned_month = 0;    // yyyymm of the last account.warning (0: none)

  std::string encode() const;
  static std::optional<AccountState> decode(std::string_view value);
};

struct AccountEvent {
  enum class Kind { kWarning, kBlocked };
  Kind kind = Kind::kWarning;
  std::string account;
  uint32_t month = 0;
  int64_t spent_micros = 0;
  int64_t limit_micros = 0;
  bool blocked = false;
  bool stop_running = false;
};

// Brings `state` in line with `spent` (the account's spend in `month`, the
// current month) and returns the events that announce the change:
// - a warning once per month when spent reaches soft_percent of the budget;
// - blocked=true when a hard budget is reached (spent >= monthly);
// - blocked=false when a blocked account is under its budget again (raised,
//   removed, made soft, or a new month began).
std::vector<AccountEvent> evaluate_budget(std::string_view account, AccountState& state, uint32_t month,
                                          int64_t spent);

}  // namespace trainyard::billing
