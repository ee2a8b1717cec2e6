// trainyard-scheduler: takes jobs, decides where they run, follows them to
// the end. See services/scheduler/README.md for its config keys.
#include "shell.h"
#include "util/run_service.h"

int main(int argc, char** argv) { return trainyard::run_service<trainyard::scheduler::SchedulerShell>(argc, argv); }
