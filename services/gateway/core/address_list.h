// Lists of client addresses in CIDR form ("10.0.0.0/8", "127.0.0.1",
// "fd00::/8"), for the gateway's trusted proxies and its /metrics scrape
// allowlist. Pure: parses config values and matches a peer's address text.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace trainyard::gateway {

class AddressList {
 public:
  // Parses each entry; InvalidArgument naming `key` (the config key) and the
  // entry when one is not an IPv4/IPv6 address with an optional /prefix.
  static Result<AddressList> parse(const std::vector<std::string>& entries, const std::string& key);

  // Whether `ip` (as a socket reports it: "127.0.0.1", "::1",
  // "::ffff:10.0.0.1") falls in one of the ranges. Not an address: false.
  bool contains(const std::string& ip) const;
  bool empty() const { return ranges_.empty(); }

 private:
  struct Range {
    std::array<uint8_t, 16> bytes{};  // IPv4 as IPv4-mapped IPv6
    int prefix = 128;
  };
  std::vector<Range> ranges_;
};

}  // namespace trainyard::gateway
