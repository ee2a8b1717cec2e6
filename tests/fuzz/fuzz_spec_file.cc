// ty's parsers of what users write: a job spec file (TOML, YAML-ish or
// JSON as the client accepts) and the #SBATCH directives of a batch script.
#include "trainyard/job_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)trainyard::client::parse_spec_file(text, "fuzz.toml");
  (void)trainyard::client::parse_spec_file(text, "fuzz.json");
  (void)trainyard::client::read_directives(text, "fuzz.sh");
  (void)trainyard::client::parse_gres(text);
  (void)trainyard::client::parse_time_limit(text);
  (void)trainyard::client::validate_array(text);
  (void)trainyard::client::parse_dependency(text);
  return 0;
}
