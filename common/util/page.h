// A reply page under a byte budget. Every list a service returns is cut into
// pages so that no reply nears the message size limit however much state
// there is: the caller gives a budget (0: the default), the service admits
// items while their estimated size fits, and a truncated page names the
// cursor the next request starts after. The first item always fits, so a
// page always makes progress.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace trainyard {

class PageBudget {
 public:
  static constexpr uint32_t kDefaultBytes = 1u << 20;  // 1 MiB
  static constexpr uint32_t kMaxBytes = 16u << 20;      // well under rpc::kMaxMessageBytes
  static constexpr size_t kPerItemOverhead = 32;        // vtable, offsets, alignment

  explicit PageBudget(uint32_t asked) : budget_(asked == 0 ? kDefaultBytes : std::min(asked, kMaxBytes)) {}

  // True when an item of about `bytes` joins the page; false (and truncated()
  // from then on) when the page is full. Once full, stays full.
  bool admit(size_t bytes) {
    if (truncated_) return false;
    size_t size = bytes + kPerItemOverhead;
    if (items_ > 0 && used_ + size > budget_) {
      truncated_ = true;
      return false;
    }
    used_ += size;
    ++items_;
    return true;
  }
  bool truncated() const { return truncated_; }
  size_t items() const { return items_; }

 private:
  size_t budget_;
  size_t used_ = 64;  // the reply's own fields
  size_t items_ = 0;
  bool truncated_ = false;
};

}  // namespace trainyard
