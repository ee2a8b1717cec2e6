// Client::terminal_io: an interactive job's terminal, through the agent
// of the node that holds its pseudo-terminal.
#include "rpc/client.h"
#include "trainyard/client.h"

namespace trainyard::client {

Result<fb::TerminalOutputT> Client::terminal_io(const std::string& node, uint64_t job_id, std::string_view input,
                                                uint64_t input_offset, uint64_t offset, uint16_t rows,
                                                uint16_t cols) {
  auto known = agent_endpoints_.find(node);
  if (known == agent_endpoints_.end()) {
    auto all = nodes();
    if (!all) return all.status();
    for (auto& n : *all) {
      if (n.node && n.node->name == node && !n.node->agent_endpoint.empty()) {
        known = agent_endpoints_.emplace(node, n.node->agent_endpoint).first;
      }
    }
    if (known == agent_endpoints_.end()) {
      return Status::unavailable("the resource broker knows no agent endpoint for node " + node +
                                 "; is its agent registered?");
    }
  }
  auto& agent = peer("agent " + node + " " + connectable(known->second));
  auto r = agent.call(fb::RequestBody::TerminalIo, [&](flatbuffers::FlatBufferBuilder& b) {
    auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    return fb::CreateTerminalIo(b, job_id, data, offset, rows, cols, input_offset).Union();
  });
  if (!r) {
    if (r.status().code() == ErrorCode::Unavailable) {
      return Status::unavailable("the agent of node " + node + " at " + known->second + " did not answer");
    }
    return r.status();
  }
  const auto* body = r->body<fb::TerminalOutput>();
  if (!body) return Status::internal("the agent of node " + node + " answered with an unexpected reply type");
  fb::TerminalOutputT out;
  body->UnPackTo(&out);
  return out;
}

}  // namespace trainyard::client
