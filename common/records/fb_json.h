// Small pieces for writing FlatBuffers tables as JSON, shared by the record
// codec (record_json.cc) and the gateway's views of its other answers
// (services/gateway/core/codec.cc): an absent string is "", an absent vector
// is [], a double that is not finite is null (JSON has no NaN or Inf).
#pragma once

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "trainyard/fb/common_generated.h"
#include "wire/fb_str.h"

namespace trainyard::records {

using trainyard::str;

inline nlohmann::json key_values(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* kvs) {
  nlohmann::json j = nlohmann::json::object();
  if (!kvs) return j;
  for (const auto* kv : *kvs) {
    if (kv) j[str(kv->key())] = str(kv->value());
  }
  return j;
}

template <typename T>
nlohmann::json numbers(const flatbuffers::Vector<T>* v) {
  nlohmann::json j = nlohmann::json::array();
  if (!v) return j;
  for (auto x : *v) j.push_back(x);
  return j;
}

inline nlohmann::json strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  nlohmann::json j = nlohmann::json::array();
  if (!v) return j;
  for (const auto* s : *v) j.push_back(str(s));
  return j;
}

inline nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace trainyard::records
