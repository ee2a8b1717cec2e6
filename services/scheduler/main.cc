// trainyard-scheduler: takes jobs, decides where they run, follows them to
// the end. See services/scheduler/README.md for its config keys.
#include <spdlog/spdlog.h>

#include "shell.h"
#include "util/runtime.h"
#include "util/service_main.h"

int main(int argc, char** argv) {
  trainyard::block_termination_signals();
  CLI::App app{"trainyard-scheduler: the job scheduler. Takes SubmitJob/CancelJob/HoldJob/ReleaseJob/GetJob/QueryJobs "
               "on its ROUTER (scheduler.endpoint), publishes job.*, follows node.*, lease.*, run.* and account.*, "
               "and asks the resource broker (broker.endpoint) for leases."};
  trainyard::ServiceArgs args;
  trainyard::add_service_flags(app, args);
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "Once serving, write {\"pid\", \"endpoint\", \"instance\", \"stream\", \"jobs\"} here as JSON");
  CLI11_PARSE(app, argc, argv);
  auto config = trainyard::load_service_config(args);
  trainyard::init_service_logging("scheduler", args, config);

  auto options = trainyard::scheduler::options_from_config(config);
  if (!options) {
    spdlog::error("config: {}", options.status().message());
    return 2;
  }
  zmq::context_t ctx(1);
  trainyard::SystemClock clock;
  std::string instance = options->instance;
  auto shell = trainyard::scheduler::SchedulerShell::open(ctx, std::move(options).value(), clock);
  if (!shell) {
    spdlog::error("cannot start: {}", shell.status().message());
    return 1;
  }
  try {
    trainyard::write_ready_file(ready_file, {{"endpoint", (*shell)->endpoint()},
                                             {"instance", instance},
                                             {"stream", "job.@" + instance},
                                             {"jobs", (*shell)->job_count()}});
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  spdlog::info("scheduler {} serving on {}", instance, (*shell)->endpoint());
  int sig = (*shell)->run();
  spdlog::info("stopping (signal {})", sig);
  return 0;
}
