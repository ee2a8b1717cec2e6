// Structure-aware fuzzing of FlatBuffers messages: builds a message of a
// schema's root type from the fuzzer's bytes, field by field, following the
// binary schema (reflection). Most messages it builds pass the Verifier, so
// the fuzzer spends its time in the checks and handlers behind it instead
// of dying in the Verifier; some fields are left out, some union types and
// enum values are out of range, on purpose.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>
#include <fuzzer/FuzzedDataProvider.h>

namespace reflection {
struct Schema;
struct Object;
}

namespace trainyard::fuzz {

class MessageGenerator {
 public:
  // `bfbs`: an embedded binary schema; `identifier`: the root's file identifier.
  MessageGenerator(std::span<const uint8_t> bfbs, const char* identifier);

  // A finished buffer built from `in`'s bytes. With `root_union` (values
  // of the root table's union type), the root's union member is mostly one
  // of those and always present.
  std::vector<uint8_t> build(FuzzedDataProvider& in, const std::vector<int64_t>& root_union = {}) const;

 private:
  flatbuffers::uoffset_t table(flatbuffers::FlatBufferBuilder& b, FuzzedDataProvider& in, const reflection::Object& o,
                               int depth, const std::vector<int64_t>* union_choices = nullptr) const;
  flatbuffers::uoffset_t vector(flatbuffers::FlatBufferBuilder& b, FuzzedDataProvider& in, const void* field,
                                int depth) const;
  const reflection::Schema* schema_;
  const char* identifier_;
};

}  // namespace trainyard::fuzz
