// The one check every request, reply and bus event passes before a handler
// sees it: union members present, enums in range, required fields set.
#define BOOST_TEST_MODULE wire_check
#include <boost/test/unit_test.hpp>

#include "bus/event.h"
#include "rpc/endpoint.h"
#include "rpc/message.h"
#include "trainyard/fb/bus_generated.h"
#include "wire/check.h"

using namespace trainyard;

namespace {

// A Request whose body is built by `body` (0: the union type alone).
template <typename F>
std::string request(fb::RequestBody type, F body) {
  flatbuffers::FlatBufferBuilder b;
  flatbuffers::Offset<void> off = body(b);
  fb::RequestBuilder rb(b);
  rb.add_id(7);
  rb.add_body_type(type);
  if (!off.IsNull()) rb.add_body(off);
  fb::FinishRequestBuffer(b, rb.Finish());
  return {reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()};
}

// The request's bytes stay alive with the answer (it points into them).
struct Checked {
  std::string bytes;
  rpc::CheckedRequest result;
  const rpc::CheckedRequest* operator->() const { return &result; }
};
Checked check(std::string bytes) {
  Checked c{std::move(bytes), {}};
  c.result = rpc::check_request(reinterpret_cast<const uint8_t*>(c.bytes.data()), c.bytes.size());
  return c;
}

flatbuffers::Offset<fb::JobSpec> spec(flatbuffers::FlatBufferBuilder& b, fb::DependencyKind kind) {
  std::vector<flatbuffers::Offset<flatbuffers::String>> argv{b.CreateString("true")};
  std::vector<flatbuffers::Offset<fb::Dependency>> deps{fb::CreateDependency(b, kind, 3)};
  auto cmd = b.CreateVector(argv);
  auto d = b.CreateVector(deps);
  fb::JobSpecBuilder sb(b);
  sb.add_command(cmd);
  sb.add_dependencies(d);
  return sb.Finish();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_request_whose_body_is_absent_is_refused_naming_it) {
  // Every request type, body type set and no body: the 40-byte packet that
  // used to crash each service.
  for (auto type : fb::EnumValuesRequestBody()) {
    if (type == fb::RequestBody::NONE) continue;
    auto c = check(request(type, [](auto&) { return flatbuffers::Offset<void>(); }));
    BOOST_REQUIRE(c->request);
    BOOST_CHECK_EQUAL(c->request->id(), 7u);
    BOOST_CHECK(c->status.code() == ErrorCode::InvalidArgument);
    BOOST_CHECK_EQUAL(c->status.message(),
                      std::string("Request.body: the ") + fb::EnumNameRequestBody(type) + " body is absent");
  }
}

BOOST_AUTO_TEST_CASE(a_complete_request_passes) {
  auto c = check(request(fb::RequestBody::SubmitJob, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateSubmitJob(b, spec(b, fb::DependencyKind::AfterAny)).Union();
  }));
  BOOST_REQUIRE(c->request);
  BOOST_CHECK_MESSAGE(c->status.ok(), c->status.message());
}

BOOST_AUTO_TEST_CASE(bit_flags_pass_in_any_combination) {
  // JobSpec.notify_on is a bit_flags enum: Begin|End is 3, no single value.
  auto c = check(request(fb::RequestBody::SubmitJob, [](flatbuffers::FlatBufferBuilder& b) {
    auto cmd = b.CreateVector(std::vector<flatbuffers::Offset<flatbuffers::String>>{b.CreateString("true")});
    fb::JobSpecBuilder sb(b);
    sb.add_command(cmd);
    sb.add_notify_on(fb::NotifyOn::Begin | fb::NotifyOn::End | fb::NotifyOn::TimeLimit);
    return fb::CreateSubmitJob(b, sb.Finish()).Union();
  }));
  BOOST_REQUIRE(c->request);
  BOOST_CHECK_MESSAGE(c->status.ok(), c->status.message());
}

BOOST_AUTO_TEST_CASE(an_enum_out_of_range_deep_inside_is_refused_with_its_path) {
  auto c = check(request(fb::RequestBody::SubmitJob, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateSubmitJob(b, spec(b, static_cast<fb::DependencyKind>(9))).Union();
  }));
  BOOST_CHECK_EQUAL(c->status.message(), "SubmitJob.spec.dependencies[0].kind: 9 is not a DependencyKind value");
  auto q = check(request(fb::RequestBody::QueryJobs, [](flatbuffers::FlatBufferBuilder& b) {
    std::vector<fb::JobState> states{fb::JobState::Pending, static_cast<fb::JobState>(200)};
    return fb::CreateQueryJobs(b, b.CreateVector(states)).Union();
  }));
  BOOST_CHECK_EQUAL(q->status.message(), "QueryJobs.states[1]: 200 is not a JobState value");
}

BOOST_AUTO_TEST_CASE(a_required_field_that_is_missing_is_named) {
  auto c = check(request(fb::RequestBody::SubmitJob, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::SubmitJobBuilder(b).Finish().Union();
  }));
  BOOST_CHECK_EQUAL(c->status.message(), "SubmitJob.spec: required field is absent");
  auto drain = check(request(fb::RequestBody::DrainNode, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::DrainNodeBuilder(b).Finish().Union();
  }));
  BOOST_CHECK_EQUAL(drain->status.message(), "DrainNode.name: required field is absent");
}

BOOST_AUTO_TEST_CASE(an_unknown_request_type_from_a_newer_schema_is_left_to_the_server) {
  // Evolution rule 4: the server answers Unimplemented, not InvalidArgument.
  auto c = check(request(static_cast<fb::RequestBody>(250), [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateEmpty(b).Union();
  }));
  BOOST_REQUIRE(c->request);
  BOOST_CHECK(c->status.ok());
}

BOOST_AUTO_TEST_CASE(garbage_and_short_frames_have_no_request) {
  for (std::string bytes : {std::string(), std::string("abc"), std::string(40, 'x')}) {
    auto c = check(bytes);
    BOOST_CHECK(!c->request);
    BOOST_CHECK(!c->status.ok());
  }
}

BOOST_AUTO_TEST_CASE(an_event_without_its_payload_or_with_a_bad_enum_is_refused) {
  auto envelope = [](fb::Payload type, auto payload) {
    flatbuffers::FlatBufferBuilder b;
    auto stream = b.CreateString("run.@agent-1");
    flatbuffers::Offset<void> p = payload(b);
    fb::EnvelopeBuilder eb(b);
    eb.add_stream(stream);
    eb.add_seq(1);
    eb.add_payload_type(type);
    if (!p.IsNull()) eb.add_payload(p);
    fb::FinishEnvelopeBuffer(b, eb.Finish());
    return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  };
  auto absent = envelope(fb::Payload::RunFinished, [](auto&) { return flatbuffers::Offset<void>(); });
  auto r = bus::verify_event("run.finished", absent);
  BOOST_CHECK(!r.ok());
  BOOST_CHECK_EQUAL(r.status().message(), "Envelope.payload: the RunFinished body is absent");
  auto bad_outcome = envelope(fb::Payload::RunFinished, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateRunFinished(b, 1, 2, 0, 0, static_cast<fb::RunOutcome>(200)).Union();
  });
  r = bus::verify_event("run.finished", bad_outcome);
  BOOST_CHECK(!r.ok());
  BOOST_CHECK_EQUAL(r.status().message(), "RunFinished.outcome: 200 is not a RunOutcome value");
  auto good = envelope(fb::Payload::RunFinished, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateRunFinished(b, 1, 2, 0, 0, fb::RunOutcome::Failed).Union();
  });
  r = bus::verify_event("run.finished", good);
  BOOST_CHECK_MESSAGE(r.ok(), r.status().message());
}

BOOST_AUTO_TEST_CASE(advertised_endpoints_are_checked_before_use) {
  for (auto ok : {"tcp://127.0.0.1:5550", "tcp://bus1.example.org:5550", "tcp://[::1]:80", "ipc:///tmp/x.sock",
                  "inproc://a"})
    BOOST_CHECK_MESSAGE(rpc::check_connect_endpoint(ok).ok(), ok);
  for (auto bad : {"", "x", "bogus://a", "tcp://host", "tcp://host:0", "tcp://host:70000", "tcp://*:5550",
                   "tcp://ho st:1", "tcp://:1", "ipc://"})
    BOOST_CHECK_MESSAGE(!rpc::check_connect_endpoint(bad).ok(), bad);
  BOOST_CHECK(!rpc::check_connect_endpoint("tcp://" + std::string(300, 'a') + ":1").ok());
}
