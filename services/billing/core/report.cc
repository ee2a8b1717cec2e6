#include "core/report.h"

#include "calendar/calendar.h"

namespace trainyard::billing {

Result<GroupBy> parse_group_by(std::string_view s) {
  if (s.empty() || s == "account") return GroupBy::kAccount;
  if (s == "user") return GroupBy::kUser;
  if (s == "job") return GroupBy::kJob;
  if (s == "day") return GroupBy::kDay;
  if (s == "resource") return GroupBy::kResource;
  if (s == "month") return GroupBy::kMonth;
  return Status::invalid("QueryUsage.group_by '" + std::string(s) +
                         "' is not one of account, user, job, day, resource, month");
}

UsageFilter UsageFilter::from_period(int64_t since_ns, int64_t until_ns) {
  UsageFilter f;
  if (since_ns > 0) f.first_day = day_of(since_ns);
  if (until_ns > 0) f.end_day = day_of(until_ns - 1) + 1;
  return f;
}

bool UsageFilter::matches(const LineKey& k) const {
  if (!account.empty() && k.account != account) return false;
  if (!user.empty() && k.user != user) return false;
  if (job != 0 && k.job != job) return false;
  return k.day >= first_day && k.day < end_day;
}

void UsageReport::add(const LineKey& k, const Line& l) {
  std::pair<uint64_t, std::string> sort;
  switch (by_) {
    case GroupBy::kAccount:
      sort.second = k.account;
      break;
    case GroupBy::kUser:
      sort.second = k.user;
      break;
    case GroupBy::kJob:
      sort.first = k.job;
      sort.second = std::to_string(k.job);
      break;
    case GroupBy::kDay:
      sort.first = k.day;
      sort.second = format_day(k.day);
      break;
    case GroupBy::kMonth:
      sort.first = month_of_day(k.day);
      sort.second = format_month(static_cast<uint32_t>(sort.first));
      break;
    case GroupBy::kResource:
      sort.first = static_cast<uint64_t>(k.resource);
      sort.second = std::string(resource_name(k.resource));
      if (k.resource == Resource::kGpu) sort.second += ":" + k.gpu_type;
      break;
  }
  auto& row = rows_[sort];
  row.key = sort.second;
  row.order = sort.first;
  switch (k.resource) {
    case Resource::kGpu:
      row.gpu_ns += l.quantity;
      break;
    case Resource::kCpu:
      row.cpu_ns += l.quantity;
      break;
    case Resource::kMemory:
      row.memory_mb_ns += l.quantity;
      break;
  }
  row.cost_micros += l.cost_micros;
}

std::vector<UsageRow> UsageReport::rows() const {
  std::vector<UsageRow> out;
  out.reserve(rows_.size());
  for (auto& [k, r] : rows_) out.push_back(r);
  return out;
}

std::string UsageReport::cursor(const UsageRow& row) { return std::to_string(row.order) + "/" + row.key; }

Result<std::vector<UsageRow>> UsageReport::rows_after(std::string_view cursor) const {
  if (cursor.empty()) return rows();
  auto slash = cursor.find('/');
  uint64_t order = 0;
  bool digits = slash != std::string_view::npos && slash > 0 && slash <= 20;
  for (size_t i = 0; digits && i < slash; ++i) {
    char c = cursor[i];
    digits = c >= '0' && c <= '9' && !__builtin_mul_overflow(order, 10, &order) &&
             !__builtin_add_overflow(order, static_cast<uint64_t>(c - '0'), &order);
  }
  if (!digits) {
    return Status::invalid("QueryUsage.after: '" + std::string(cursor.substr(0, 64)) +
                           "' is not a cursor a UsageReport gave (next_after)");
  }
  std::vector<UsageRow> out;
  auto from = rows_.upper_bound({order, std::string(cursor.substr(slash + 1))});
  for (auto it = from; it != rows_.end(); ++it) out.push_back(it->second);
  return out;
}

void InvoiceBuilder::add(const LineKey& k, const Line& l) {
  auto& line = lines_[{k.user, static_cast<uint32_t>(k.resource), k.gpu_type}];
  line.user = k.user;
  line.resource = k.resource;
  line.gpu_type = k.gpu_type;
  line.quantity_ns += l.quantity;
  line.cost_micros += l.cost_micros;
  total_ += l.cost_micros;
}

std::vector<InvoiceLine> InvoiceBuilder::lines() const {
  std::vector<InvoiceLine> out;
  out.reserve(lines_.size());
  for (auto& [k, l] : lines_) out.push_back(l);
  return out;
}

}  // namespace trainyard::billing
