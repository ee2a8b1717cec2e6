// A real service, in-process, for fuzzing its request dispatch: the shell
// run_service would build (its Options from config, a RocksDB store in a
// temporary directory, its ROUTER, publisher and subscriber), driven one
// loop iteration at a time. Each input is sent as one frame from a DEALER,
// exactly as a peer sends it; the service checks it, runs the handler,
// commits, and answers. The harness aborts when a reply is not a valid
// Reply for that request: a service never answers with garbage.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "rpc/message.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/run_service.h"
#include "util/runtime.h"

namespace trainyard::fuzz {

template <class Shell>
class ServiceUnderFuzz {
 public:
  // `sets`: config overrides (section.key=value) besides data and endpoints,
  // which the harness chooses: `endpoint_key` gets an inproc endpoint,
  // `data_key` a fresh directory, the bus endpoints go nowhere.
  ServiceUnderFuzz(const std::string& endpoint_key, const std::string& data_key, std::vector<std::string> sets) {
    char tmpl[] = "/tmp/ty-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    dir_ = tmpl;
    endpoint_ = "inproc://fuzz-" + endpoint_key;
    sets.push_back(endpoint_key + "=" + endpoint_);
    sets.push_back(data_key + "=" + dir_ + "/data");
    sets.push_back("bus.frontend=ipc://" + dir_ + "/no-bus-in");
    sets.push_back("bus.backend=ipc://" + dir_ + "/no-bus-out");
    auto config = Config::load("", sets);
    if (!config) die(config.status().message());
    auto options = Shell::Options::from_config(*config);
    if (!options) die(options.status().message());
    std::filesystem::create_directories(options->data);
    auto store = storage::Store::open(options->data, Shell::store_options(*options));
    if (!store) die(store.status().message());
    store_ = std::move(store).value();
    runtime_ = std::make_unique<Runtime>(store_.get());
    shell_ = std::make_unique<Shell>(ServiceEnv{ctx_, *store_, *runtime_, clock_}, std::move(options).value());
    peer_ = zmq::socket_t(ctx_, zmq::socket_type::dealer);
    peer_.set(zmq::sockopt::linger, 0);
    peer_.connect(endpoint_);
  }
  ~ServiceUnderFuzz() {
    shell_.reset();
    runtime_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Sends one request; runs the loop until its reply arrives (or, for a
  // frame the service drops unanswered or a handler that answers later, a
  // few iterations). Aborts on a malformed reply or one for another request.
  void send(const std::vector<uint8_t>& bytes) {
    peer_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none);
    auto checked = rpc::check_request(bytes.data(), bytes.size());
    int iterations = checked.request ? 8 : 1;
    for (int i = 0; i < iterations; ++i) {
      runtime_->run_once(0);
      zmq::message_t reply;
      if (!peer_.recv(reply, zmq::recv_flags::dontwait)) continue;
      Status why;
      const fb::Reply* r = rpc::check_reply(static_cast<const uint8_t*>(reply.data()), reply.size(), &why);
      if (!r) die("the service sent a malformed reply: " + why.message());
      if (!checked.request || r->id() != checked.request->id()) die("a reply to no request sent");
      return;
    }
  }

 private:
  [[noreturn]] static void die(const std::string& why) {
    std::fprintf(stderr, "service harness: %s\n", why.c_str());
    std::abort();
  }

  std::string dir_, endpoint_;
  zmq::context_t ctx_{1};
  SystemClock clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<Shell> shell_;
  zmq::socket_t peer_;
};

}  // namespace trainyard::fuzz
