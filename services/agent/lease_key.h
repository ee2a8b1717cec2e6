// The agent's store key: runs and grants are kept under their lease id.
#pragma once

#include <cstdint>
#include <string>

#include "storage/keys.h"

namespace trainyard::agent {

inline std::string lease_key(uint64_t lease) { return storage::Key().u64(lease).bytes(); }

}  // namespace trainyard::agent
