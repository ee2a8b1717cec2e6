// The job most integration tests submit, and submitting it, for Boost.Test
// cases that link trainyard_client (cluster_client.h connects them).
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>

#include "cluster_client.h"
#include "trainyard/client.h"

namespace trainyard::testing {

// The job most integration tests submit: `sh -c SHELL` as alice on account
// vision, with a grace of 2 s. A case sets on the spec what it is about.
inline fb::JobSpecT job(const std::string& shell, uint32_t gpus = 1, uint64_t time_limit_s = 600) {
  fb::JobSpecT s;
  s.name = "test";
  s.user = "alice";
  s.account = "vision";
  s.command = {"sh", "-c", shell};
  s.gpus_per_node = gpus;
  s.time_limit_s = time_limit_s;
  s.grace_s = 2;
  return s;
}

// Submits one job and returns its id; the case stops if the submit fails.
inline uint64_t submit(client::Client& cl, const fb::JobSpecT& spec) {
  auto r = cl.submit(spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return r->job_ids.at(0);
}

}  // namespace trainyard::testing
