// What the job spec tests share: a submit context, readers of a spec's env
// and labels, and a batch script parsed from a temp dir.
#pragma once

#include <fstream>

#include "process.h"
#include "trainyard/client.h"
#include "trainyard/job_spec.h"

namespace trainyard::client::spec_testing {

inline SubmitContext ctx() {
  SubmitContext c;
  c.cwd = "/home/ada/run";
  c.now_ns = int64_t{1'796'000'000} * 1'000'000'000;
  c.user = "ada";
  c.env = {{"PATH", "/usr/bin"}, {"HOME", "/home/ada"}, {"CUDA_VISIBLE_DEVICES", "0"}, {"SLURM_JOB_ID", "9"},
           {"TY_JOB_ID", "4"}, {"LR", "0.1"}};
  return c;
}

inline std::string env_of(const fb::JobSpecT& s, const std::string& key) {
  for (auto& kv : s.env) {
    if (kv->key == key) return kv->value;
  }
  return "<unset>";
}

inline std::string label_of(const fb::JobSpecT& s, const std::string& key) {
  for (auto& kv : s.labels) {
    if (kv->key == key) return kv->value;
  }
  return "<unset>";
}

inline void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Parses a batch script written to a temp dir, with extra command-line args.
inline Result<SubmitArgs> submit_script(testing::TempDir& dir, const std::string& text,
                                        std::vector<std::string> args = {}) {
  write(dir / "job.sh", text);
  auto c = ctx();
  c.cwd = dir.path();
  args.push_back("job.sh");
  return build_job_request(args, c);
}

}  // namespace trainyard::client::spec_testing
