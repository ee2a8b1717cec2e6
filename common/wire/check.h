// The one place where a received message is checked for what the FlatBuffers
// Verifier lets through: a union whose type is set but whose member is
// absent, an enum value the schema does not name, a field the schema marks
// (ty_required) that is missing. Requests, replies, bus envelopes (and the
// envelopes inside a replay batch) pass it before any handler sees them, so
// no handler dereferences a field the wire allowed to be absent.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace reflection {
struct Schema;
}

namespace trainyard::wire {

// A schema's checks, compiled once from its embedded binary schema (.bfbs).
// Immutable after construction: one instance serves every thread.
class MessageCheck {
 public:
  // `bfbs` is a binary schema (flatc --bfbs-gen-embed); it must outlive the
  // check. The checked type is its root table, or the table named `root`
  // (unqualified, e.g. "JobRecord": stored records). Throws
  // std::invalid_argument if the schema is unusable (a start-up failure,
  // never input).
  explicit MessageCheck(std::span<const uint8_t> bfbs, std::string_view root = {});
  ~MessageCheck();
  MessageCheck(const MessageCheck&) = delete;
  MessageCheck& operator=(const MessageCheck&) = delete;

  // Checks a buffer that already passed the Verifier. Returns InvalidArgument
  // naming the field path ("SubmitJob.spec.dependencies[2].kind: ...").
  Status check(const uint8_t* verified_buffer) const;

  // The root table's name ("Request").
  const std::string& root_name() const;

 private:
  struct Plan;
  std::unique_ptr<Plan> plan_;
};

// The checks for Trainyard's three wire roots.
const MessageCheck& request_check();
const MessageCheck& reply_check();
const MessageCheck& envelope_check();
// And for what services store that the wire also carries.
const MessageCheck& job_record_check();
const MessageCheck& job_spec_check();

}  // namespace trainyard::wire
