// What the gateway's tests share: a running trainyard-gateway with its own
// token store, an HTTP client that sends a token (or cookies, or any
// header), and tokens made the way a user makes them (`ty token create`).
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "process.h"

namespace trainyard::testing {

struct HttpResponse {
  int status = 0;
  nlohmann::json body;
  std::string text;
  std::string content_type;
  std::string location;
  std::vector<std::string> cookies;  // Set-Cookie headers
};

class Http {
 public:
  // `token`: sent as 'Authorization: Bearer <token>' when not empty.
  explicit Http(const std::string& url, std::string token = "") : cli_(url), token_(std::move(token)) {
    cli_.set_read_timeout(20, 0);
    cli_.set_connection_timeout(5, 0);
    cli_.enable_server_certificate_verification(false);
  }
  HttpResponse get(const std::string& path, httplib::Headers h = {}) {
    return wrap(cli_.Get(path.c_str(), with_token(std::move(h))));
  }
  HttpResponse post(const std::string& path, const std::string& body, httplib::Headers h = {},
                    const std::string& type = "application/json") {
    return wrap(cli_.Post(path.c_str(), with_token(std::move(h)), body, type.c_str()));
  }
  HttpResponse del(const std::string& path, httplib::Headers h = {}) {
    return wrap(cli_.Delete(path.c_str(), with_token(std::move(h))));
  }
  httplib::Client& raw() { return cli_; }

 private:
  httplib::Headers with_token(httplib::Headers h) const {
    if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
    return h;
  }
  static HttpResponse wrap(const httplib::Result& r) {
    HttpResponse out;
    if (!r) return out;
    out.status = r->status;
    out.text = r->body;
    out.content_type = r->get_header_value("Content-Type");
    out.location = r->get_header_value("Location");
    for (size_t i = 0; i < r->get_header_value_count("Set-Cookie"); ++i) {
      out.cookies.push_back(r->get_header_value("Set-Cookie", i));
    }
    if (out.content_type.rfind("application/json", 0) == 0) out.body = nlohmann::json::parse(r->body, nullptr, false);
    return out;
  }
  httplib::Client cli_;
  std::string token_;
};

// A running trainyard-gateway on free ports, its token store in `dir`.
struct Gateway {
  Gateway(const TempDir& dir, std::vector<std::string> sets, const std::string& name = "gateway",
          const std::string& web_root = "") {
    std::vector<std::string> argv{bin("trainyard-gateway"), "--listen", "127.0.0.1:0", "--ready-file",
                                  dir / (name + ".ready")};
    if (!web_root.empty()) argv.insert(argv.end(), {"--web-root", web_root});
    sets.insert(sets.begin(), {"gateway.endpoint=tcp://127.0.0.1:*", "gateway.data=" + (dir / (name + ".db"))});
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    std::remove((dir / (name + ".ready")).c_str());  // a restart in the same folder waits for its own
    proc = std::make_unique<Process>(argv, dir / (name + ".log"));
    auto ready = wait_json(dir / (name + ".ready"), std::chrono::seconds(15));
    url = ready.at("url").get<std::string>();
    rpc = ready.at("rpc").get<std::string>();
    BOOST_REQUIRE(ready.at("pid").get<int>() == proc->pid());
  }
  // `ty token create` run as `user`: the token it printed.
  std::string token_for(const std::string& user, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv{bin("ty"), "token", "--gateway", rpc, "create", "--name", "test"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto [rc, out] = run(argv, std::chrono::seconds(20), {{"USER", user}, {"TY_CONFIG", ""}, {"HOME", "/nonexistent"}});
    BOOST_REQUIRE_MESSAGE(rc == 0, "ty token create failed: " << out);
    auto at = out.find("tyt_");
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, "ty token create printed no token: " << out);
    return out.substr(at, out.find('\n', at) - at);
  }
  std::unique_ptr<Process> proc;
  std::string url, rpc;
};

}  // namespace trainyard::testing
