// scontrol: show job|node|hostnames|hostlist, and hold|release|requeue of
// jobs. `scontrol show job` prints Slurm's key=value lines (JobState=,
// NodeList=, ExitCode=...) so the usual greps keep working; `scontrol show
// hostnames $SLURM_JOB_NODELIST` is what multi-node scripts use to find their
// first node.
#include <pwd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

#include "slurm_shim.h"
#include "trainyard/job_spec.h"

namespace trainyard::ty::slurm {

namespace {

std::string or_null(const std::string& s) { return s.empty() ? "(null)" : s; }

std::string user_id(const std::string& name) {
  if (const passwd* pw = ::getpwnam(name.c_str())) return name + "(" + std::to_string(pw->pw_uid) + ")";
  return name;
}

std::string job_lines(const fb::JobRecordT& j) {
  const fb::JobSpecT empty;
  const fb::JobSpecT& s = j.spec ? *j.spec : empty;
  bool waiting = j.state == fb::JobState::Pending || j.state == fb::JobState::Held;
  std::string reason = j.state == fb::JobState::Held ? "JobHeldUser" : (waiting && !j.reason.empty() ? j.reason : "None");
  uint32_t nodes = std::max<uint32_t>(1, s.nodes);
  uint32_t cpus = std::max<uint32_t>(1, s.cpus);
  std::string tres = "cpu=" + std::to_string(cpus * nodes) + ",node=" + std::to_string(nodes);
  if (s.memory_mb) tres += ",mem=" + std::to_string(s.memory_mb * nodes) + "M";
  if (s.gpus_per_node) tres += ",gres/gpu=" + std::to_string(s.gpus_per_node * nodes);
  std::ostringstream o;
  o << "JobId=" << j.job_id;
  if (j.array_job_id) o << " ArrayJobId=" << j.array_job_id << " ArrayTaskId=" << j.array_index;
  o << " JobName=" << s.name << "\n"
    << "   UserId=" << user_id(s.user) << " Account=" << or_null(s.account)
    << " QOS=" << (s.qos.empty() ? "normal" : s.qos) << " Priority=" << static_cast<int64_t>(j.priority_score) << "\n"
    << "   JobState=" << slurm_state(j.state) << " Reason=" << reason << " Dependency=" << (s.dependencies.empty() ? "(null)" : "yes")
    << "\n"
    << "   Requeue=" << (s.max_retries ? 1 : 0) << " Restarts=" << (j.attempt > 0 ? j.attempt - 1 : 0)
    << " BatchFlag=" << (s.script.empty() ? 0 : 1) << " ExitCode=" << exit_code_of(j) << "\n"
    << "   RunTime=" << elapsed(j) << " TimeLimit=" << time_limit(&s) << "\n"
    << "   SubmitTime=" << iso_time(j.submit_time_ns) << " StartTime=" << iso_time(j.start_time_ns)
    << " EndTime=" << iso_time(j.end_time_ns) << "\n"
    << "   Partition=" << (j.partition.empty() ? s.partition : j.partition) << "\n"
    << "   ReqNodeList=" << or_null(join(s.nodelist, ",")) << " ExcNodeList=" << or_null(join(s.exclude, ",")) << "\n"
    << "   NodeList=" << or_null(join(j.nodes, ",")) << "\n"
    << "   NumNodes=" << nodes << " NumCPUs=" << cpus * nodes << " NumTasks=" << std::max<uint32_t>(1, s.ntasks)
    << " CPUs/Task=" << std::max<uint32_t>(1, s.cpus_per_task) << "\n"
    << "   TRES=" << tres << "\n"
    << "   Features=" << or_null(s.constraint) << " OverSubscribe=" << (s.exclusive ? "NO" : "OK") << "\n"
    << "   Command=" << join(s.command, " ") << "\n"
    << "   WorkDir=" << s.workdir << "\n"
    << "   StdErr=" << or_null(s.stderr_path) << "\n"
    << "   StdOut=" << or_null(s.stdout_path) << "\n";
  return o.str();
}

std::string node_lines(const fb::NodeStatusT& n) {
  const fb::NodeInfoT empty;
  const fb::NodeInfoT& i = n.node ? *n.node : empty;
  std::map<std::string, int> types;
  for (auto& g : i.gpus) types[g->type.empty() ? "gpu" : g->type]++;
  std::string gres;
  for (auto& [t, count] : types) gres += (gres.empty() ? "" : ",") + std::string("gpu:") + t + ":" + std::to_string(count);
  std::string features;
  for (auto& kv : i.labels) {
    if (kv) features += (features.empty() ? "" : ",") + kv->key + (kv->value.empty() ? "" : "=" + kv->value);
  }
  std::string state = !n.up ? "DOWN" : n.leases.empty() ? "IDLE" : n.allocated_gpus.size() < i.gpus.size() ? "MIXED" : "ALLOCATED";
  if (n.up && n.drained) state += "+DRAIN";
  std::ostringstream o;
  o << "NodeName=" << i.name << "\n"
    << "   CPUTot=" << i.cpus << " RealMemory=" << i.memory_mb << "\n"
    << "   Gres=" << or_null(gres) << " GresUsed=gpu:" << n.allocated_gpus.size() << "\n"
    << "   AvailableFeatures=" << or_null(features) << " ActiveFeatures=" << or_null(features) << "\n"
    << "   State=" << state << (n.reason.empty() ? "" : " Reason=" + n.reason) << "\n"
    << "   Partitions=" << (i.partition.empty() ? "default" : i.partition) << "\n";
  return o.str();
}

int show(Context& ctx, const std::vector<std::string>& what) {
  const std::string kind = what.empty() ? "" : what[0];
  std::vector<std::string> rest(what.begin() + (what.empty() ? 0 : 1), what.end());
  if (kind == "hostnames" || kind == "hostname" || kind == "hostlist") {
    std::string list = rest.empty() ? "" : rest[0];
    if (list.empty()) {
      const char* env = std::getenv("SLURM_JOB_NODELIST");
      list = env ? env : "";
    }
    auto names = client::expand_hostlist(list);
    if (!names) return usage_error("scontrol", names.status());
    if (kind == "hostlist") {
      std::cout << join(*names, ",") << "\n";
    } else {
      for (auto& n : *names) std::cout << n << "\n";
    }
    return kExitOk;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  if (kind == "job" || kind == "jobs") {
    client::JobFilter all;
    all.limit = 1'000'000;
    auto jobs = fetch_jobs(*c, rest, all);
    if (!jobs) return service_error("scontrol", jobs.status());
    for (size_t k = 0; k < jobs->size(); ++k) std::cout << (k ? "\n" : "") << job_lines((*jobs)[k]);
    if (jobs->empty()) std::cout << "No jobs in the system\n";
    return kExitOk;
  }
  if (kind == "node" || kind == "nodes") {
    auto nodes = c->nodes();
    if (!nodes) return service_error("scontrol", nodes.status());
    bool any = false;
    for (auto& n : *nodes) {
      if (!rest.empty() && (!n.node || n.node->name != rest[0])) continue;
      std::cout << (any ? "\n" : "") << node_lines(n);
      any = true;
    }
    if (!any && !rest.empty()) return usage_error("scontrol", Status::not_found("Node " + rest[0] + " not found"));
    return kExitOk;
  }
  return usage_error("scontrol", Status::invalid("show " + kind +
                                                 " is not supported: show job [ID], node [NAME], hostnames [LIST], "
                                                 "hostlist [LIST]"));
}

// hold, release, requeue: each job, array or task the IDs name.
int act(Context& ctx, const std::string& verb, const std::vector<std::string>& args) {
  if (args.empty()) return usage_error("scontrol", Status::invalid(verb + " needs a job id"));
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  int rc = kExitOk;
  for (auto& arg : args) {
    for (auto& id : split_list(arg)) {
      auto jobs = jobs_of_ids(*c, {id});
      if (!jobs) {
        std::cerr << "scontrol: error: " << jobs.status().message() << " for job " << id << "\n";
        if (jobs.status().code() == ErrorCode::Unavailable) return kExitUnavailable;
        rc = kSlurmError;
        continue;
      }
      for (auto& j : *jobs) {
        if (jobs->size() > 1 && verb == "requeue" && j.state != fb::JobState::Running &&
            j.state != fb::JobState::Scheduled) {
          continue;  // an array: its started tasks
        }
        Status s = verb == "hold" ? c->hold(j.job_id) : verb == "release" ? c->release(j.job_id) : c->requeue(j.job_id);
        if (!s && !(jobs->size() > 1 && s.code() == ErrorCode::FailedPrecondition)) {
          std::cerr << "scontrol: error: " << s.message() << " for job " << client::job_name_of(j) << "\n";
          rc = s.code() == ErrorCode::Unavailable ? kExitUnavailable : kSlurmError;
        }
      }
    }
  }
  return rc;
}

}  // namespace

int scontrol(Context& ctx, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << "Usage: scontrol show job [ID] | show node [NAME] | show hostnames [LIST] | show hostlist [LIST]\n"
                 "       scontrol hold|release|requeue ID[,ID...]   (Trainyard's scontrol; docs/slurm.md)\n";
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "show") return show(ctx, rest);
  if (args[0] == "hold" || args[0] == "release" || args[0] == "requeue") return act(ctx, args[0], rest);
  return usage_error("scontrol", Status::invalid(args[0] + " is not supported: show, hold, release, requeue"));
}

}  // namespace trainyard::ty::slurm
