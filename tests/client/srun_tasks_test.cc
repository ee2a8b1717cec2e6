// srun's pure rules (client/ty/srun_tasks.h): where a step's tasks go over
// the job's nodes, each task's variables, and srun's exit code.
#define BOOST_TEST_MODULE srun_tasks
#include <boost/test/unit_test.hpp>

#include <map>

#include "srun_tasks.h"

using trainyard::ty::place_tasks;
using trainyard::ty::StepEnv;
using trainyard::ty::StepOutcome;

namespace {

// "node:local" for each rank, in rank order.
std::vector<std::string> layout(uint32_t ntasks, uint32_t nodes, std::optional<uint32_t> per_node = std::nullopt) {
  StepEnv env;
  env.num_nodes = nodes;
  env.tasks_per_node = per_node;
  std::vector<std::string> out;
  uint32_t rank = 0;
  for (auto& p : place_tasks(ntasks, env)) {
    BOOST_TEST(p.procid == rank++);
    out.push_back(std::to_string(p.node_id) + ":" + std::to_string(p.localid));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(tasks_fill_nodes_in_blocks_the_first_nodes_taking_one_more) {
  BOOST_TEST(layout(4, 1) == (std::vector<std::string>{"0:0", "0:1", "0:2", "0:3"}), boost::test_tools::per_element());
  BOOST_TEST(layout(4, 2) == (std::vector<std::string>{"0:0", "0:1", "1:0", "1:1"}), boost::test_tools::per_element());
  BOOST_TEST(layout(5, 2) == (std::vector<std::string>{"0:0", "0:1", "0:2", "1:0", "1:1"}),
             boost::test_tools::per_element());
  BOOST_TEST(layout(2, 3) == (std::vector<std::string>{"0:0", "1:0"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ntasks_per_node_given_to_the_job_fixes_each_nodes_share) {
  BOOST_TEST(layout(3, 2, 2) == (std::vector<std::string>{"0:0", "0:1", "1:0"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(each_task_reads_its_rank_local_rank_and_the_steps_size) {
  StepEnv env;
  env.num_nodes = 2;
  env.step_ntasks = 4;
  env.step_id = 1;
  std::map<std::string, std::string> vars;
  for (auto& [k, v] : task_variables(env, {3, 1, 1})) vars[k] = v;
  BOOST_TEST(vars["SLURM_PROCID"] == "3");
  BOOST_TEST(vars["SLURM_LOCALID"] == "1");
  BOOST_TEST(vars["SLURM_NODEID"] == "1");
  BOOST_TEST(vars["SLURM_NTASKS"] == "4");
  BOOST_TEST(vars["SLURM_STEP_ID"] == "1");
  BOOST_TEST(vars["TY_PROCID"] == "3");
}

BOOST_AUTO_TEST_CASE(the_first_failing_task_decides_srun_exit_code) {
  StepOutcome ok;
  ok.note(0, 0, 0);
  ok.note(1, 0, 0);
  BOOST_TEST(ok.exit_code() == 0);
  StepOutcome failed;
  failed.note(2, 0, 0);
  failed.note(1, 7, 0);
  failed.note(0, 3, 0);
  BOOST_TEST(failed.exit_code() == 7);
  StepOutcome killed;
  killed.note(0, 0, 9);
  killed.note(1, 4, 0);
  BOOST_TEST(killed.exit_code() == 137);
}
