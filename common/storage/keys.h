// Typed, order-preserving keys: big-endian integers and NUL-terminated
// strings, so RocksDB's bytewise order is the order of the values.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace trainyard::storage {

// Builds a key from parts: Key().str("job").u64(id).str().
class Key {
 public:
  Key& u64(uint64_t v) {
    for (int i = 7; i >= 0; --i) s_.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
    return *this;
  }
  Key& u32(uint32_t v) {
    for (int i = 3; i >= 0; --i) s_.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
    return *this;
  }
  // Signed: the sign bit flipped, so negatives sort before positives.
  Key& i64(int64_t v) { return u64(static_cast<uint64_t>(v) ^ (uint64_t{1} << 63)); }
  // A string part; it may not contain NUL, which ends it.
  Key& str(std::string_view v) {
    if (v.find('\0') != std::string_view::npos) throw std::invalid_argument("key part contains NUL");
    s_.append(v);
    s_.push_back('\0');
    return *this;
  }
  const std::string& bytes() const { return s_; }
  operator std::string_view() const { return s_; }  // NOLINT: keys read naturally

 private:
  std::string s_;
};

// Reads parts back in the order they were written. Throws std::out_of_range
// on a key too short for what is asked (a programming error).
class KeyReader {
 public:
  explicit KeyReader(std::string_view k) : k_(k) {}
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(k_[pos_ + i]);
    pos_ += 8;
    return v;
  }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(k_[pos_ + i]);
    pos_ += 4;
    return v;
  }
  int64_t i64() { return static_cast<int64_t>(u64() ^ (uint64_t{1} << 63)); }
  std::string_view str() {
    auto end = k_.find('\0', pos_);
    if (end == std::string_view::npos) throw std::out_of_range("key string part not terminated");
    auto v = k_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return v;
  }
  bool done() const { return pos_ >= k_.size(); }

 private:
  void need(size_t n) const {
    if (pos_ + n > k_.size()) throw std::out_of_range("key too short");
  }
  std::string_view k_;
  size_t pos_ = 0;
};

// Fixed-width big-endian value encoding for counters and seqs.
inline std::string encode_u64(uint64_t v) { return Key().u64(v).bytes(); }
inline uint64_t decode_u64(std::string_view s) { return KeyReader(s).u64(); }

// The smallest key greater than every key starting with `prefix`.
inline std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = prefix.back();
    if (static_cast<uint8_t>(c) != 0xff) {
      ++c;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string();  // every key: no upper bound
}

}  // namespace trainyard::storage
