// Configuration: a TOML file plus command-line overrides ("section.key=value").
// Every key a service reads is documented in deploy/trainyard.example.toml.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "util/status.h"

namespace trainyard {

class Config {
 public:
  Config() = default;

  // Reads `path` (may be empty: no file) then applies each override
  // "dotted.key=value", where value is read as a TOML value (42, true, "x",
  // [1,2]) or, failing that, as a bare string. Errors name the file and line.
  static Result<Config> load(const std::string& path, const std::vector<std::string>& overrides = {});
  static Result<Config> parse(std::string_view text, const std::string& source = "<string>");

  // Typed getters with defaults. A key present with the wrong type throws
  // std::runtime_error naming the key and where it was set: that is a
  // start-up failure the operator must fix.
  std::string get_string(std::string_view key, const std::string& def = "") const;
  int64_t get_int(std::string_view key, int64_t def = 0) const;
  double get_double(std::string_view key, double def = 0) const;
  bool get_bool(std::string_view key, bool def = false) const;
  // The same, and a value outside [min, max] throws naming the key, where it
  // was set and the range (a negative count, a zero period...).
  int64_t get_int(std::string_view key, int64_t def, int64_t min, int64_t max) const;
  double get_double(std::string_view key, double def, double min, double max) const;
  std::vector<std::string> get_strings(std::string_view key) const;
  // The same, with `def` when the key is absent or an empty list.
  std::vector<std::string> get_strings(std::string_view key, const std::vector<std::string>& def) const;
  bool has(std::string_view key) const;

  // Sets a key from code (e.g. a --flag), as an override would.
  Status set(std::string_view key, std::string_view value);

  const toml::table& table() const { return table_; }
  const std::string& source() const { return source_; }

 private:
  toml::node_view<const toml::node> node(std::string_view key) const;
  [[noreturn]] void type_error(std::string_view key, const char* want) const;

  toml::table table_;
  std::string source_;
};

}  // namespace trainyard
