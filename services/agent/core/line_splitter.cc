#include "core/line_splitter.h"

namespace trainyard::agent {

void LineSplitter::feed(std::string_view bytes, const OnLine& on_line, const OnTooLong& on_too_long) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (skipping_) {
      if (nl == std::string_view::npos) {
        consumed_ += bytes.size();
        return;
      }
      consumed_ += nl + 1;
      skipping_ = false;
      bytes.remove_prefix(nl + 1);
      continue;
    }
    size_t take = nl == std::string_view::npos ? bytes.size() : nl;
    if (partial_.size() + take > max_line_) {
      on_too_long(consumed_);
      skipping_ = true;
      consumed_ += partial_.size();
      partial_.clear();
      continue;  // the skipping branch swallows the rest of the line
    }
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      return;
    }
    uint64_t start = consumed_;
    if (partial_.empty()) {
      on_line(bytes.substr(0, nl), start);
    } else {
      partial_.append(bytes.substr(0, nl));
      on_line(partial_, start);
    }
    consumed_ += partial_.empty() ? nl + 1 : partial_.size() + 1;
    partial_.clear();
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(const OnLine& on_line, const OnTooLong&) {
  if (skipping_ || partial_.empty()) return;
  on_line(partial_, consumed_);
  consumed_ += partial_.size();
  partial_.clear();
}

}  // namespace trainyard::agent
