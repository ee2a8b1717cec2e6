#include "core/address_list.h"

#include <arpa/inet.h>

#include <cstring>
#include <optional>

namespace trainyard::gateway {

namespace {

// An address as 16 bytes (IPv4 mapped into ::ffff:0:0/96), and how many of
// the prefix bits a bare IPv4 /N shifts by.
std::optional<std::array<uint8_t, 16>> address_bytes(const std::string& text, bool* v4) {
  std::array<uint8_t, 16> out{};
  in_addr a4{};
  if (::inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &a4, 4);
    *v4 = true;
    return out;
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    std::memcpy(out.data(), &a6, 16);
    *v4 = false;
    return out;
  }
  return std::nullopt;
}

bool prefix_matches(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int prefix) {
  int full = prefix / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(full)) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[static_cast<size_t>(full)] & mask) == (b[static_cast<size_t>(full)] & mask);
}

}  // namespace

Result<AddressList> AddressList::parse(const std::vector<std::string>& entries, const std::string& key) {
  AddressList list;
  for (const auto& e : entries) {
    auto slash = e.find('/');
    std::string addr = e.substr(0, slash);
    bool v4 = false;
    auto bytes = address_bytes(addr, &v4);
    if (!bytes) {
      return Status::invalid(key + ": '" + e + "' is not an IP address or CIDR range (e.g. \"10.0.0.0/8\", \"::1\")");
    }
    int max = v4 ? 32 : 128;
    int prefix = max;
    if (slash != std::string::npos) {
      std::string p = e.substr(slash + 1);
      bool digits = !p.empty() && p.size() <= 3 && p.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::stoi(p) > max) {
        return Status::invalid(key + ": '" + e + "' has a bad prefix length (0.." + std::to_string(max) + ")");
      }
      prefix = std::stoi(p);
    }
    list.ranges_.push_back(Range{*bytes, v4 ? prefix + 96 : prefix});
  }
  return list;
}

bool AddressList::contains(const std::string& ip) const {
  bool v4 = false;
  auto bytes = address_bytes(ip, &v4);
  if (!bytes) return false;
  for (const auto& r : ranges_) {
    if (prefix_matches(*bytes, r.bytes, r.prefix)) return true;
  }
  return false;
}

}  // namespace trainyard::gateway
