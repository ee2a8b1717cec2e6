// Requests as any peer can send them to a service's ROUTER: raw bytes, or
// (first byte odd) a Request built field by field from the schema. Every one
// must be refused with a reason or pass every schema rule; nothing crashes.
#include <cstdlib>

#include "fb_generator.h"
#include "rpc/message.h"
#include "trainyard/fb/request_bfbs_generated.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fuzz::MessageGenerator gen({fb::RequestBinarySchema::data(), fb::RequestBinarySchema::size()}, "TYRQ");
  FuzzedDataProvider in(data, size);
  std::vector<uint8_t> bytes = in.ConsumeBool() ? gen.build(in) : in.ConsumeRemainingBytes<uint8_t>();
  auto checked = rpc::check_request(bytes.data(), bytes.size());
  if (checked.request && checked.status.ok()) {
    // What passed may be read by any handler: the union member is there.
    if (checked.request->body_type() != fb::RequestBody::NONE &&
        static_cast<size_t>(checked.request->body_type()) <= static_cast<size_t>(fb::RequestBody::MAX) &&
        checked.request->body() == nullptr)
      std::abort();
  }
  return 0;
}
