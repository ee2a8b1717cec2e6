// trainyard-supervise: the per-run supervisor as a small program of its own.
// The agent starts one per run (see supervisor.h); keeping it free of the
// agent's libraries (RocksDB, ZeroMQ, oneTBB...) makes it load in about a
// millisecond instead of fifteen, which is most of a job's launch latency.
#include <cstdlib>
#include <cstring>

#include "supervisor.h"

int main(int argc, char** argv) {
  if (argc != 4 || std::strcmp(argv[1], "--supervise") != 0) return 2;
  return trainyard::agent::supervise_main(argv[2], std::atoi(argv[3]));
}
