#include "core/policy.h"

namespace trainyard::scheduler {

std::unique_ptr<QueuePolicy> make_policy(std::string_view name) {
  if (name.empty() || name == "priority") return std::make_unique<PriorityFifoPolicy>();
  return nullptr;
}

}  // namespace trainyard::scheduler
