#include "wire/check.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#include <flatbuffers/flatbuffers.h>
#include <flatbuffers/reflection.h>

#include "trainyard/fb/bus_bfbs_generated.h"
#include "trainyard/fb/reply_bfbs_generated.h"
#include "trainyard/fb/request_bfbs_generated.h"

namespace trainyard::wire {
namespace {

using reflection::BaseType;

// The attribute a schema puts on a field that every sender must set.
constexpr std::string_view kRequiredAttribute = "ty_required";

std::string short_name(std::string_view qualified) {
  auto dot = qualified.rfind('.');
  return std::string(dot == std::string_view::npos ? qualified : qualified.substr(dot + 1));
}

bool has_attribute(const reflection::Field& f, std::string_view key) {
  if (!f.attributes()) return false;
  for (const auto* kv : *f.attributes())
    if (kv->key() && kv->key()->string_view() == key) return true;
  return false;
}

int64_t read_integer(const uint8_t* p, BaseType t) {
  switch (t) {
    case BaseType::Bool:
    case BaseType::UByte: return flatbuffers::ReadScalar<uint8_t>(p);
    case BaseType::Byte: return flatbuffers::ReadScalar<int8_t>(p);
    case BaseType::Short: return flatbuffers::ReadScalar<int16_t>(p);
    case BaseType::UShort: return flatbuffers::ReadScalar<uint16_t>(p);
    case BaseType::Int: return flatbuffers::ReadScalar<int32_t>(p);
    case BaseType::UInt: return flatbuffers::ReadScalar<uint32_t>(p);
    case BaseType::Long: return flatbuffers::ReadScalar<int64_t>(p);
    case BaseType::ULong: {
      auto v = flatbuffers::ReadScalar<uint64_t>(p);
      return v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v);
    }
    default: return 0;
  }
}

}  // namespace

struct MessageCheck::Plan {
  enum class Kind : uint8_t { Present, Union, Enum, Table, TableVector, EnumVector };
  struct Rule {
    Kind kind;
    bool required = false;
    uint16_t voffset = 0;
    uint16_t type_voffset = 0;  // unions: the `<name>_type` field
    BaseType scalar = BaseType::None;
    int target = -1;            // tables: object index; enums and unions: enum index
    std::string name;
  };
  struct Object {
    std::string name;
    std::vector<Rule> rules;
    bool needs = false;  // some rule applies to it or to a table below it
  };
  struct Enum {
    std::string name;
    std::vector<int64_t> values;  // sorted
    std::vector<int> members;     // unions: object index by type value, -1 for NONE
  };

  std::vector<Object> objects;
  std::vector<Enum> enums;
  int root = -1;
  std::string root_name;

  Plan(const reflection::Schema& schema, std::string_view root_table_name);
  Status check_table(const flatbuffers::Table& t, int object, std::string& path) const;
  Status check_rule(const flatbuffers::Table& t, const Rule& r, std::string& path) const;
  bool enum_has(int e, int64_t v) const {
    const auto& vals = enums[e].values;
    return std::binary_search(vals.begin(), vals.end(), v);
  }
  Status enum_error(const std::string& path, int e, int64_t v) const {
    return Status::invalid(path + ": " + std::to_string(v) + " is not a " + enums[e].name + " value");
  }

 private:
  void add_rules(const reflection::Schema& schema, const reflection::Object& o, Object& out);
  void settle_needs();
};

MessageCheck::Plan::Plan(const reflection::Schema& schema, std::string_view root_table_name) {
  for (const auto* e : *schema.enums()) {
    Enum out{short_name(e->name()->string_view()), {}, {}};
    bool flags = e->attributes() && e->attributes()->LookupByKey("bit_flags") != nullptr;
    for (const auto* v : *e->values()) {
      out.values.push_back(v->value());
      if (v->union_type() && v->union_type()->base_type() == BaseType::Obj) {
        if (out.members.size() <= static_cast<size_t>(v->value())) out.members.resize(v->value() + 1, -1);
        out.members[v->value()] = v->union_type()->index();
      }
    }
    if (flags) out.values.clear();  // bit flags: any combination; never checked
    std::sort(out.values.begin(), out.values.end());
    enums.push_back(std::move(out));
  }
  for (const auto* o : *schema.objects()) objects.push_back(Object{short_name(o->name()->string_view()), {}, false});
  for (size_t i = 0; i < objects.size(); ++i) add_rules(schema, *schema.objects()->Get(i), objects[i]);
  settle_needs();
  // A table rule whose target needs nothing and that is not required does
  // nothing: drop it, so checking a message skips whole subtrees.
  for (auto& o : objects) {
    std::erase_if(o.rules, [&](const Rule& r) {
      return (r.kind == Kind::Table || r.kind == Kind::TableVector) && !r.required && !objects[r.target].needs;
    });
  }
  const reflection::Object* root_table = schema.root_table();
  if (!root_table_name.empty()) {
    root_table = nullptr;
    for (const auto* o : *schema.objects())
      if (short_name(o->name()->string_view()) == root_table_name) root_table = o;
    if (!root_table) throw std::invalid_argument("binary schema has no table " + std::string(root_table_name));
  }
  if (!root_table) throw std::invalid_argument("binary schema has no root table");
  for (size_t i = 0; i < schema.objects()->size(); ++i)
    if (schema.objects()->Get(i) == root_table) root = static_cast<int>(i);
  root_name = objects.at(root).name;
}

void MessageCheck::Plan::add_rules(const reflection::Schema& schema, const reflection::Object& o, Object& out) {
  if (o.is_struct()) return;
  for (const auto* f : *o.fields()) {
    if (f->deprecated()) continue;
    Rule r{Kind::Present, has_attribute(*f, kRequiredAttribute), f->offset(), 0, BaseType::None, -1,
           f->name()->str()};
    auto type = f->type();
    auto base = type->base_type();
    if (base == BaseType::UType) continue;  // checked with its union
    if (base == BaseType::Union) {
      auto* tf = o.fields()->LookupByKey((f->name()->str() + "_type").c_str());
      if (!tf) throw std::invalid_argument("union " + r.name + " has no type field");
      r.kind = Kind::Union;
      r.type_voffset = tf->offset();
      r.target = type->index();
    } else if (base == BaseType::Obj) {
      if (schema.objects()->Get(type->index())->is_struct()) {
        if (!r.required) continue;
      } else {
        r.kind = Kind::Table;
        r.target = type->index();
      }
    } else if (base == BaseType::Vector && type->element() == BaseType::Obj &&
               !schema.objects()->Get(type->index())->is_struct()) {
      r.kind = Kind::TableVector;
      r.target = type->index();
    } else if (base == BaseType::Vector && flatbuffers::IsInteger(type->element()) && type->index() >= 0) {
      r.kind = Kind::EnumVector;
      r.scalar = type->element();
      r.target = type->index();
    } else if (flatbuffers::IsInteger(base) && type->index() >= 0) {
      r.kind = Kind::Enum;
      r.scalar = base;
      r.target = type->index();
    } else if (!r.required) {
      continue;
    }
    if ((r.kind == Kind::Enum || r.kind == Kind::EnumVector) && enums[r.target].values.empty()) continue;
    out.rules.push_back(std::move(r));
  }
}

void MessageCheck::Plan::settle_needs() {
  for (bool changed = true; changed;) {
    changed = false;
    for (auto& o : objects) {
      if (o.needs) continue;
      for (const auto& r : o.rules) {
        bool nested = r.kind == Kind::Table || r.kind == Kind::TableVector;
        if (!nested || r.required || objects[r.target].needs) {
          o.needs = changed = true;
          break;
        }
      }
    }
  }
}

Status MessageCheck::Plan::check_table(const flatbuffers::Table& t, int object, std::string& path) const {
  for (const auto& r : objects[object].rules) {
    size_t mark = path.size();
    path += '.';
    path += r.name;
    auto s = check_rule(t, r, path);
    if (!s.ok()) return s;
    path.resize(mark);
  }
  return Status::success();
}

Status MessageCheck::Plan::check_rule(const flatbuffers::Table& t, const Rule& r, std::string& path) const {
  bool present = t.GetOptionalFieldOffset(r.voffset) != 0;
  if (r.kind == Kind::Union) {
    auto type = t.GetField<uint8_t>(r.type_voffset, 0);
    if (type == 0) return r.required ? Status::invalid(path + ": required field is absent") : Status::success();
    const auto& members = enums[r.target].members;
    // A member this build does not know comes from a newer schema: not for
    // us, and the reader skips it (schemas/README.md, evolution rule 4).
    if (type >= members.size() || members[type] < 0) return Status::success();
    if (!present) return Status::invalid(path + ": the " + objects[members[type]].name + " body is absent");
    if (!objects[members[type]].needs) return Status::success();
    // Inside a union, fields are named from the member: "SubmitJob.spec".
    std::string inner = objects[members[type]].name;
    return check_table(*t.GetPointer<const flatbuffers::Table*>(r.voffset), members[type], inner);
  }
  if (!present) return r.required ? Status::invalid(path + ": required field is absent") : Status::success();
  switch (r.kind) {
    case Kind::Enum: {
      auto v = read_integer(t.GetAddressOf(r.voffset), r.scalar);
      return enum_has(r.target, v) ? Status::success() : enum_error(path, r.target, v);
    }
    case Kind::EnumVector: {
      auto* vec = t.GetPointer<const flatbuffers::VectorOfAny*>(r.voffset);
      auto size = flatbuffers::GetTypeSize(r.scalar);
      for (flatbuffers::uoffset_t i = 0; i < vec->size(); ++i) {
        auto v = read_integer(vec->Data() + i * size, r.scalar);
        if (!enum_has(r.target, v)) return enum_error(path + "[" + std::to_string(i) + "]", r.target, v);
      }
      return Status::success();
    }
    case Kind::Table:
      return check_table(*t.GetPointer<const flatbuffers::Table*>(r.voffset), r.target, path);
    case Kind::TableVector: {
      auto* vec = t.GetPointer<const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::Table>>*>(r.voffset);
      for (flatbuffers::uoffset_t i = 0; i < vec->size(); ++i) {
        size_t mark = path.size();
        path += "[" + std::to_string(i) + "]";
        if (!vec->Get(i)) return Status::invalid(path + ": element is absent");
        auto s = check_table(*vec->Get(i), r.target, path);
        if (!s.ok()) return s;
        path.resize(mark);
      }
      return Status::success();
    }
    default:
      return Status::success();  // Present: presence was all there was to check
  }
}

MessageCheck::MessageCheck(std::span<const uint8_t> bfbs, std::string_view root) {
  flatbuffers::Verifier v(bfbs.data(), bfbs.size());
  if (!reflection::VerifySchemaBuffer(v)) throw std::invalid_argument("not a binary FlatBuffers schema");
  plan_ = std::make_unique<Plan>(*reflection::GetSchema(bfbs.data()), root);
}

MessageCheck::~MessageCheck() = default;

Status MessageCheck::check(const uint8_t* verified_buffer) const {
  if (!plan_->objects[plan_->root].needs) return Status::success();
  std::string path = plan_->root_name;
  return plan_->check_table(*flatbuffers::GetRoot<flatbuffers::Table>(verified_buffer), plan_->root, path);
}

const std::string& MessageCheck::root_name() const { return plan_->root_name; }

const MessageCheck& request_check() {
  static const MessageCheck check({fb::RequestBinarySchema::data(), fb::RequestBinarySchema::size()});
  return check;
}

const MessageCheck& reply_check() {
  static const MessageCheck check({fb::ReplyBinarySchema::data(), fb::ReplyBinarySchema::size()});
  return check;
}

const MessageCheck& job_record_check() {
  static const MessageCheck check({fb::ReplyBinarySchema::data(), fb::ReplyBinarySchema::size()}, "JobRecord");
  return check;
}

const MessageCheck& job_spec_check() {
  static const MessageCheck check({fb::ReplyBinarySchema::data(), fb::ReplyBinarySchema::size()}, "JobSpec");
  return check;
}

const MessageCheck& envelope_check() {
  static const MessageCheck check({fb::EnvelopeBinarySchema::data(), fb::EnvelopeBinarySchema::size()});
  return check;
}

}  // namespace trainyard::wire
