#include "fb_generator.h"

#include <flatbuffers/reflection.h>

#include "trainyard/fb/runs_generated.h"

namespace trainyard::fuzz {
namespace {

using reflection::BaseType;

constexpr int kMaxDepth = 6;
constexpr size_t kMaxVector = 8;

// A field left to its fate: 1 in 8 fields is absent, required or not.
bool present(FuzzedDataProvider& in) { return in.ConsumeIntegralInRange<int>(0, 7) != 0; }

// A value for an enum field: usually one the enum names, sometimes not.
int64_t enum_value(FuzzedDataProvider& in, const reflection::Enum& e) {
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) return in.ConsumeIntegral<uint8_t>();
  auto* values = e.values();
  return values->Get(in.ConsumeIntegralInRange<uint32_t>(0, values->size() - 1))->value();
}

template <typename T>
void add_scalar(flatbuffers::FlatBufferBuilder& b, flatbuffers::voffset_t field, int64_t v) {
  b.AddElement<T>(field, static_cast<T>(v));
}

void add_scalar(flatbuffers::FlatBufferBuilder& b, flatbuffers::voffset_t field, BaseType t, int64_t v, double d) {
  switch (t) {
    case BaseType::Bool:
    case BaseType::UByte:
    case BaseType::UType: return add_scalar<uint8_t>(b, field, v);
    case BaseType::Byte: return add_scalar<int8_t>(b, field, v);
    case BaseType::Short: return add_scalar<int16_t>(b, field, v);
    case BaseType::UShort: return add_scalar<uint16_t>(b, field, v);
    case BaseType::Int: return add_scalar<int32_t>(b, field, v);
    case BaseType::UInt: return add_scalar<uint32_t>(b, field, v);
    case BaseType::Long: return add_scalar<int64_t>(b, field, v);
    case BaseType::ULong: return add_scalar<uint64_t>(b, field, v);
    case BaseType::Float: return b.AddElement<float>(field, static_cast<float>(d));
    case BaseType::Double: return b.AddElement<double>(field, d);
    default: return;
  }
}

// Small numbers most of the time (ids and counts that mean something), the
// extremes sometimes.
int64_t number(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return in.ConsumeIntegral<int64_t>();
    case 1: return in.ConsumeBool() ? INT64_MAX : INT64_MIN;
    default: return in.ConsumeIntegralInRange<int64_t>(0, 64);
  }
}

}  // namespace

MessageGenerator::MessageGenerator(std::span<const uint8_t> bfbs, const char* identifier)
    : schema_(reflection::GetSchema(bfbs.data())), identifier_(identifier) {}

std::vector<uint8_t> MessageGenerator::build(FuzzedDataProvider& in, const std::vector<int64_t>& root_union) const {
  flatbuffers::FlatBufferBuilder b;
  auto root = table(b, in, *schema_->root_table(), 0, root_union.empty() ? nullptr : &root_union);
  b.Finish(flatbuffers::Offset<void>(root), identifier_);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

flatbuffers::uoffset_t MessageGenerator::vector(flatbuffers::FlatBufferBuilder& b, FuzzedDataProvider& in,
                                                const void* f, int depth) const {
  const auto& field = *static_cast<const reflection::Field*>(f);
  auto elem = field.type()->element();
  size_t n = in.ConsumeIntegralInRange<size_t>(0, kMaxVector);
  if (elem == BaseType::String) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> v;
    for (size_t i = 0; i < n; ++i) v.push_back(b.CreateString(in.ConsumeRandomLengthString(32)));
    return b.CreateVector(v).o;
  }
  if (elem == BaseType::Obj) {
    const auto* o = schema_->objects()->Get(field.type()->index());
    if (o->is_struct()) {
      // The one struct the schemas have; built by type for its alignment.
      std::vector<fb::MetricPoint> pts;
      for (size_t i = 0; i < n; ++i)
        pts.emplace_back(number(in), number(in), in.ConsumeFloatingPoint<double>(),
                         in.ConsumeIntegralInRange<uint32_t>(0, 9));
      return b.CreateVectorOfStructs(pts).o;
    }
    std::vector<flatbuffers::Offset<void>> v;
    for (size_t i = 0; i < n && depth < kMaxDepth; ++i) v.emplace_back(table(b, in, *o, depth + 1));
    return b.CreateVector(v).o;
  }
  if (flatbuffers::IsScalar(elem)) {
    auto size = flatbuffers::GetTypeSize(elem);
    b.StartVector(n, size);
    for (size_t i = n; i-- > 0;) {
      int64_t v = field.type()->index() >= 0 ? enum_value(in, *schema_->enums()->Get(field.type()->index()))
                                             : number(in);
      switch (size) {
        case 1: b.PushElement(static_cast<uint8_t>(v)); break;
        case 2: b.PushElement(static_cast<uint16_t>(v)); break;
        case 4: b.PushElement(static_cast<uint32_t>(v)); break;
        default: b.PushElement(static_cast<uint64_t>(v)); break;
      }
    }
    return b.EndVector(n);
  }
  return b.CreateVector(std::vector<uint8_t>{}).o;
}

flatbuffers::uoffset_t MessageGenerator::table(flatbuffers::FlatBufferBuilder& b, FuzzedDataProvider& in,
                                               const reflection::Object& o, int depth,
                                               const std::vector<int64_t>* union_choices) const {
  struct Value {
    const reflection::Field* field;
    flatbuffers::uoffset_t offset = 0;  // strings, vectors, tables
    int64_t number = 0;
    double real = 0;
  };
  std::vector<Value> values;
  // Children first: FlatBuffers builds bottom-up.
  for (const auto* f : *o.fields()) {
    if (f->deprecated() || !present(in)) continue;
    auto t = f->type()->base_type();
    Value v{f};
    if (t == BaseType::String) {
      v.offset = b.CreateString(in.ConsumeRandomLengthString(48)).o;
    } else if (t == BaseType::Vector) {
      v.offset = vector(b, in, f, depth);
    } else if (t == BaseType::Obj) {
      const auto* sub = schema_->objects()->Get(f->type()->index());
      if (sub->is_struct() || depth >= kMaxDepth) continue;
      v.offset = table(b, in, *sub, depth + 1);
    } else if (t == BaseType::UType) {
      continue;  // set with its union below
    } else if (t == BaseType::Union) {
      // Pick the member (sometimes one no schema names), set the `_type`
      // field, and build the member's table (sometimes leave it out).
      auto* tf = o.fields()->LookupByKey((f->name()->str() + "_type").c_str());
      const auto& e = *schema_->enums()->Get(f->type()->index());
      // Mostly one of the caller's choices (a service's own requests), so
      // the input reaches a handler; now and then anything.
      int64_t type = union_choices && in.ConsumeIntegralInRange<int>(0, 15) != 0
                         ? (*union_choices)[in.ConsumeIntegralInRange<size_t>(0, union_choices->size() - 1)]
                         : enum_value(in, e);
      // The member's table is always built when a choice was made.
      bool chosen = union_choices != nullptr;
      values.push_back(Value{tf, 0, type, 0});
      const reflection::EnumVal* member = e.values()->LookupByKey(type);
      if (!member || !member->union_type() || member->union_type()->base_type() != BaseType::Obj) continue;
      if (depth >= kMaxDepth || (!chosen && !present(in))) continue;
      v.offset = table(b, in, *schema_->objects()->Get(member->union_type()->index()), depth + 1);
    } else if (f->type()->index() >= 0 && flatbuffers::IsInteger(t)) {
      v.number = enum_value(in, *schema_->enums()->Get(f->type()->index()));
    } else if (flatbuffers::IsFloat(t)) {
      v.real = in.ConsumeFloatingPoint<double>();
    } else {
      v.number = number(in);
    }
    values.push_back(v);
  }
  auto start = b.StartTable();
  for (const auto& v : values) {
    auto t = v.field->type()->base_type();
    if (flatbuffers::IsScalar(t)) {
      add_scalar(b, v.field->offset(), t, v.number, v.real);
    } else {
      b.AddOffset(v.field->offset(), flatbuffers::Offset<void>(v.offset));
    }
  }
  return b.EndTable(start);
}

}  // namespace trainyard::fuzz
