// The node agent's request dispatch and lease stream with its real handlers
// behind it: ReadLog and TerminalIo requests, lease grants, releases and
// revocations (believed: they come on the broker's streams), and directory
// views, against a real run table in a temporary RocksDB. The agent runs
// simulated nodes ("sim-0", "sim-1"), so a fuzzed grant starts a simulated
// run, never a process with the fuzzer's bytes as its command line.
#include "service_harness.h"
#include "shell.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const std::vector<int64_t> mine = {static_cast<int64_t>(RequestBody::Ping),
                                            static_cast<int64_t>(RequestBody::ReadLog),
                                            static_cast<int64_t>(RequestBody::TerminalIo)};
  static fuzz::ServiceUnderFuzz<agent::AgentShell> service(
      "agent.endpoint", "agent.data",
      {"agent.node=sim", "agent.simulate=2", "agent.gpus=[{type=\"A100\",memory_gb=80,count=4}]",
       "agent.heartbeat_ms=60000", "agent.usage_tick_ms=60000", "agent.ops_ms=60000", "broker.instance=fuzz",
       "billing.instance=fuzz", "broker.endpoint=ipc:///nonexistent/ty-fuzz-broker"});
  static const std::vector<fuzz::EventKind> events = {{fb::Payload::LeaseGranted, "lease.sim-0."},
                                                      {fb::Payload::LeaseGranted, "lease.sim-1."},
                                                      {fb::Payload::LeaseReleased, "lease.sim-0."},
                                                      {fb::Payload::LeaseRevoked, "lease.sim-1."},
                                                      {fb::Payload::DirectoryView, "directory."}};
  fuzz::fuzz_one(service, data, size, mine, events);
  return 0;
}
