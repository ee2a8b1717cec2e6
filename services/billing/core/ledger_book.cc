// Ledger::book: amounts priced elsewhere (cloud node time) booked on a line.
#include <string>

#include "calendar/calendar.h"
#include "core/ledger.h"

namespace trainyard::billing {

Status Ledger::book(std::string_view account, uint32_t day, std::string_view user, uint64_t job,
                    std::string_view gpu_type, u128 quantity, int64_t micros) {
  if (micros < 0) return Status::invalid("a booked amount is never negative");
  auto& sp = spend_entry(spend_key(account, month_of_day(day)));
  int64_t spent;
  if (__builtin_add_overflow(sp.second.micros, micros, &spent)) {
    return Status::invalid("booking " + std::to_string(micros) + " for " + std::string(account) +
                           " would overflow its month's spend");
  }
  LineKey k;
  k.account = std::string(account);
  k.day = day;
  k.user = std::string(user);
  k.job = job;
  k.resource = Resource::kGpu;
  k.gpu_type = std::string(gpu_type);
  auto [it, inserted] = lines_.try_emplace(k.encode());
  if (inserted) {
    if (auto v = read_line_(it->first)) {
      if (auto l = Line::decode(*v)) it->second.line = *l;
    }
  }
  it->second.line.quantity += quantity;
  it->second.line.cost_micros += micros;
  if (!it->second.dirty) {
    it->second.dirty = true;
    dirty_lines_.push_back(&*it);
  }
  if (micros != 0) {
    sp.second.micros = spent;
    if (!sp.second.dirty) {
      sp.second.dirty = true;
      dirty_spends_.push_back(&sp);
    }
  }
  if (job != 0 && known_jobs_.insert(job).second) new_jobs_.emplace_back(job, std::string(account));
  return Status::success();
}

}  // namespace trainyard::billing
