// trainyard-agent: the node agent. Runs the jobs the broker leases to its
// node (or, simulated, to many nodes) and reports runs, usage and metrics.
#include <cstdlib>
#include <cstring>

#include "shell.h"
#include "supervisor.h"
#include "util/run_service.h"

int main(int argc, char** argv) {
  // The hidden per-run supervisor mode (see supervisor.h); not in --help.
  if (argc >= 2 && std::strcmp(argv[1], "--supervise") == 0) {
    if (argc < 4) return 2;
    return trainyard::agent::supervise_main(argv[2], std::atoi(argv[3]));
  }
  return trainyard::run_service<trainyard::agent::AgentShell>(argc, argv);
}
