// trainyard-metrics-aggregator: stores every metric point agents report and
// answers series and comparison queries (see README.md for config keys).
#include "shell.h"
#include "util/run_service.h"

int main(int argc, char** argv) { return trainyard::run_service<trainyard::metrics::AggregatorShell>(argc, argv); }
