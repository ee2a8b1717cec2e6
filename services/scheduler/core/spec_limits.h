// Bounds on what a submitted spec may hold (sizes, counts, UTF-8 text), so
// that no user can make the scheduler store, publish or answer with
// unbounded data. Each refusal names the field, its size and the limit.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/config.h"
#include "trainyard/fb/jobs_generated.h"
#include "util/status.h"

namespace trainyard::scheduler {


// The bytes a spec takes encoded, about: every string and list entry with
// its length prefix and offsets, plus the fixed fields.
uint64_t spec_bytes(const fb::JobSpecT& spec);

// InvalidArgument when the spec is over one of `limits`, or when a text field
// that is shown or used as a name (name, user, account, partition,
// experiment, gpu_type, labels, env names) is not UTF-8 or holds a NUL.
Status check_spec_limits(const fb::JobSpecT& spec, const SpecLimits& limits);

}  // namespace trainyard::scheduler
