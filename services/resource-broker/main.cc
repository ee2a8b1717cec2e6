// trainyard-resource-broker: holds the truth about nodes, GPUs and leases;
// grants Allocate only on free GPUs, declares silent nodes down.
#include "shell.h"
#include "util/run_service.h"

int main(int argc, char** argv) { return trainyard::run_service<trainyard::broker::BrokerShell>(argc, argv); }
