// ty's parsers of what users write: a job spec file (TOML, YAML-ish or
// JSON as the client accepts), the #SBATCH directives of a batch script, and
// the directory exports `ty admin import` reads (TOML, CSV).
#include "trainyard/directory_file.h"
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
  (void)trainyard::client::directory_ops_from_text(text, "fuzz.toml");
  (void)trainyard::client::directory_ops_from_text(text, "fuzz.csv");
  return 0;
}
