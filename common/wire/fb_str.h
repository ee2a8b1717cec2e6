// The text of an optional FlatBuffers string field. The wire checks
// (wire/check.h) refuse a message whose required string is absent; every
// other string may be, and reads as "".
#pragma once

#include <string>

#include <flatbuffers/flatbuffers.h>

namespace trainyard {

inline std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace trainyard
