// Replies as a client reads them: raw bytes or a Reply built from the schema.
#include <cstdlib>

#include "fb_generator.h"
#include "rpc/message.h"
#include "trainyard/fb/reply_bfbs_generated.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fuzz::MessageGenerator gen({fb::ReplyBinarySchema::data(), fb::ReplyBinarySchema::size()}, "TYRP");
  FuzzedDataProvider in(data, size);
  std::vector<uint8_t> bytes = in.ConsumeBool() ? gen.build(in) : in.ConsumeRemainingBytes<uint8_t>();
  Status why;
  const auto* reply = rpc::check_reply(bytes.data(), bytes.size(), &why);
  if (reply && reply->body_type() != fb::ReplyBody::NONE &&
      static_cast<size_t>(reply->body_type()) <= static_cast<size_t>(fb::ReplyBody::MAX) && !reply->body())
    std::abort();
  return 0;
}
