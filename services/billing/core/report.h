// Reports over ledger lines: usage rows grouped by account, user, job, day,
// resource or month (QueryUsage), and a month's invoice (GetInvoice). Every
// figure is a sum of whole lines, so rows and invoice lines add up to their
// totals exactly.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ledger.h"
#include "util/status.h"

namespace trainyard::billing {

enum class GroupBy { kAccount, kUser, kJob, kDay, kResource, kMonth };
// "account" (also ""), "user", "job", "day", "resource", "month".
Result<GroupBy> parse_group_by(std::string_view s);

// Which lines a query covers. Days are whole UTC days: a line counts when
// its day overlaps [since, until).
struct UsageFilter {
  std::string account;  // empty: every account
  std::string user;     // empty: every user
  uint64_t job = 0;     // 0: every job
  uint32_t first_day = 0;
  uint32_t end_day = std::numeric_limits<uint32_t>::max();  // exclusive

  static UsageFilter from_period(int64_t since_ns, int64_t until_ns);
  bool matches(const LineKey& k) const;
};

struct UsageRow {
  std::string key;
  uint64_t order = 0;  // sorts before key (jobs and days numerically)
  u128 gpu_ns = 0;     // GPU-ns
  u128 cpu_ns = 0;     // core-ns
  u128 memory_mb_ns = 0;
  int64_t cost_micros = 0;
};

class UsageReport {
 public:
  explicit UsageReport(GroupBy by) : by_(by) {}
  void add(const LineKey& k, const Line& l);
  // Rows in key order (jobs numerically).
  std::vector<UsageRow> rows() const;
  // Rows after `cursor` (empty: from the first) in the same order. A cursor
  // is what cursor(row) made of a row of an earlier page; anything else is
  // refused, naming QueryUsage.after.
  Result<std::vector<UsageRow>> rows_after(std::string_view cursor) const;
  static std::string cursor(const UsageRow& row);

 private:
  GroupBy by_;
  std::map<std::pair<uint64_t, std::string>, UsageRow> rows_;
};

struct InvoiceLine {
  std::string user;
  Resource resource = Resource::kGpu;
  std::string gpu_type;
  u128 quantity_ns = 0;
  int64_t cost_micros = 0;
};

class InvoiceBuilder {
 public:
  void add(const LineKey& k, const Line& l);
  // Lines by user, resource, GPU type.
  std::vector<InvoiceLine> lines() const;
  int64_t total_micros() const { return total_; }

 private:
  std::map<std::tuple<std::string, uint32_t, std::string>, InvoiceLine> lines_;
  int64_t total_ = 0;
};

// Whole milliseconds of a unit-ns quantity (floor).
inline uint64_t to_ms(u128 ns) { return static_cast<uint64_t>(ns / 1'000'000); }

}  // namespace trainyard::billing
