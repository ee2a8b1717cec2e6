// The keys Trainyard knows, so that a misspelt key is refused at start
// ("did you mean `scheduler.cycle_ms`?") instead of silently ignored, and
// the range checks every numeric key passes.
//
// The schema is deploy/trainyard.example.toml itself, embedded at build
// time: a key is known when the example shows it, set or commented out
// ("# cpus = 64"), in its section (commented headers "# [a.b]" count too).
// Tables whose names the operator chooses ([scheduler.partitions.<name>])
// and tables of free keys (labels, shares) are listed in config_schema.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/config.h"
#include "util/status.h"

namespace trainyard {

class ConfigSchema {
 public:
  // Builds the schema from an example config's text.
  static ConfigSchema from_example(std::string_view example_text);
  // The schema of this build (deploy/trainyard.example.toml).
  static const ConfigSchema& trainyard();

  // Every key of `config` that the schema does not know, in one
  // InvalidArgument: each with where it was set and the closest known key.
  Status check(const Config& config) const;

  bool knows(std::string_view dotted_key) const;
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::vector<std::string> keys_;      // normalized dotted keys, sorted
  std::vector<std::string> sections_;  // normalized section paths, sorted
  std::string closest(std::string_view key) const;
};

// `key` as the schema stores it: the operator-chosen table names replaced
// by '*' ("scheduler.partitions.gpu.labels" -> "scheduler.partitions.*.labels").
std::string normalize_config_key(std::string_view key);

}  // namespace trainyard
