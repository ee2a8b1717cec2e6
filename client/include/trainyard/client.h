// The Trainyard client library: what `ty` and any other program use to
// submit and follow jobs, read logs, look at nodes, metrics and bills.
//
// A Client talks request-reply to the services' ROUTER sockets (scheduler,
// resource broker, node agents, metrics-aggregator, billing) and subscribes
// to the bus only to watch job events. Every call returns a Status or a
// Result: InvalidArgument for a bad request (the message names the field),
// NotFound, FailedPrecondition (wrong state: cancel a finished job), and
// Unavailable naming the service when it does not answer within a few
// seconds. No call hangs: each request has a timeout and a retry.
//
// A Client is not thread-safe: use one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/endpoints.h"
#include "trainyard/fb/rpc_generated.h"
#include "util/status.h"

namespace zmq {
class context_t;
}

namespace trainyard::rpc {
class Client;
}

namespace trainyard::client {

// The five job states after which nothing more happens to a job.
bool is_terminal(fb::JobState state);

struct SubmitResult {
  std::vector<uint64_t> job_ids;  // one per array task; one for a plain job
  uint64_t array_job_id = 0;      // 0: not an array
};

// Which jobs list() returns. Empty fields do not filter.
struct JobFilter {
  std::vector<fb::JobState> states;  // empty: every state
  std::string user;
  std::string account;
  std::string experiment;
  uint64_t array_job_id = 0;
  uint32_t limit = 1000;      // most jobs in all (list() follows the scheduler's pages up to it)
  uint32_t page_bytes = 0;    // most bytes per reply (0: the scheduler's default, scheduler.query_page_bytes)
};

// A job as a user names it: "12" (job 12, or every task of array 12) or, as
// Slurm writes array tasks, "12_3" (the task of array 12 with index 3).
struct JobRef {
  uint64_t id = 0;
  std::optional<int32_t> index;  // set: a task of array `id`
  std::string text;              // as given, for messages
};
// InvalidArgument "'x' is not a job id (N, or ARRAY_INDEX such as 12_3)".
Result<JobRef> parse_job_ref(std::string_view text);
// How a job is shown to a user: "12", or "12_3" for an array task.
std::string job_name_of(const fb::JobRecordT& job);

// One job event seen by watch().
struct JobEvent {
  std::string topic;          // "job.state" (job.submitted too in a plaintext site)
  std::string stream;
  uint64_t seq = 0;
  int64_t time_ns = 0;
  uint64_t job_id = 0;
  std::optional<fb::JobStateChangedT> state;   // for job.state
  std::optional<fb::JobSubmittedT> submitted;  // for job.submitted (watch() asks for job.state only)
};

struct LogOptions {
  bool stderr_stream = false;  // read stderr instead of stdout
  bool follow = false;         // keep reading until the run ends (`tail -f`)
  uint32_t attempt = 0;        // 0: the latest
  uint64_t offset = 0;         // start here (bytes)
  // While following: how long to wait for a pending job to start, and for
  // a running one to write more (0: no limit).
  std::chrono::milliseconds timeout{0};
};

struct UsageQuery {
  std::string account;
  std::string user;
  uint64_t job_id = 0;
  int64_t since_ns = 0;
  int64_t until_ns = 0;        // 0: now
  std::string group_by;        // "account", "user", "job", "day", "resource"
};

struct Budget {
  std::string account;
  int64_t monthly_micros = 0;  // the money per month, in micro-units
  uint32_t soft_percent = 80;  // account.warning at this share of the budget
  bool hard = false;           // block new jobs once spent
  bool stop_running = false;   // with hard: also stop running jobs
};

// Which audit records audit() returns, newest first (QueryAudit).
struct AuditQuery {
  int64_t since_ns = 0;
  int64_t until_ns = 0;       // 0: now
  std::string principal;      // only this principal's ("user:alice"); empty: everyone's
  bool refused_only = false;
  uint32_t limit = 100;       // most records in this page
  std::string before;         // the previous page's next_before (empty: the newest)
};

// Writes one metrics line {"step": S, "name": value...} to $TY_METRICS_FILE
// for the agent to pick up (a no-op, returning Ok, outside a Trainyard job).
// Values must be finite: NaN and infinities are refused (InvalidArgument).
// The line is appended with one write() and flushed, so it is never seen
// half-written and survives the process dying right after.
Status log_metrics(int64_t step, const std::map<std::string, double>& values);

class Client {
 public:
  explicit Client(Endpoints endpoints, std::string principal = "");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Endpoints& endpoints() const { return endpoints_; }
  // The user's key that requests prove (null without CURVE), for a raw
  // rpc::Client beside this one (rpc::ClientOptions::site).
  const security::Site* site() const { return site_.get(); }

  // ---- jobs (scheduler) ----

  // Submits a job (or array). Returns once the scheduler has stored it
  // durably. Fills in spec.client_token when empty so that a retried send
  // cannot submit twice. Errors: InvalidArgument naming the bad field
  // (unknown GPU type, more GPUs than any node has...), Unavailable.
  // `held`: the jobs start Held (sbatch -H), in the same request, so none
  // can start before it is held; release() lets them go.
  Result<SubmitResult> submit(const fb::JobSpecT& spec, bool held = false);

  // Cancels a job: a pending or held job at once, a running one by signal
  // (SIGTERM, its grace period, SIGKILL). Errors: NotFound,
  // FailedPrecondition when it has already ended.
  Status cancel(uint64_t job_id, const std::string& reason = "");

  // Keeps a pending job from starting / lets a held job start again.
  Status hold(uint64_t job_id);
  Status release(uint64_t job_id);
  // Stops a started job's run and makes it wait again under the same id
  // (scontrol requeue); FailedPrecondition when it has not started or ended.
  Status requeue(uint64_t job_id);

  // The job's record: state, reason, nodes, GPUs, exit code and history.
  Result<fb::JobRecordT> status(uint64_t job_id);

  // The jobs `ref` names: one job, every task of an array (in index order),
  // or one task. NotFound names the job as the user wrote it.
  Result<std::vector<fb::JobRecordT>> jobs_named(const JobRef& ref);

  // Jobs matching `filter`, in the scheduler's order.
  Result<std::vector<fb::JobRecordT>> list(const JobFilter& filter);
  // One page of list(): jobs with an id above `after_job_id`, at most
  // `limit`; the reply says whether more may follow (truncated) and from
  // where (next_after_job_id).
  Result<fb::JobListT> list_page(const JobFilter& filter, uint64_t after_job_id, uint32_t limit);

  // Waits until every job in `job_ids` is terminal or `timeout` passes
  // (DeadlineExceeded). Uses job.* events from the bus to wake early and
  // polls the scheduler as well, so a lost event or an absent bus only costs
  // latency; a scheduler restart is ridden out. `progress` (may be empty) is
  // called with the latest records whenever a state changes. Returns the
  // final records, in the order asked.
  using Progress = std::function<void(const std::vector<fb::JobRecordT>&)>;
  Result<std::vector<fb::JobRecordT>> wait(const std::vector<uint64_t>& job_ids, std::chrono::milliseconds timeout,
                                           const Progress& progress = {});

  // Delivers job.state events from the bus as they happen (a plain, non-durable
  // subscriber: events published while not watching are not seen; use
  // status() or list() for the truth). `job_ids` empty: every job. Returns
  // Ok when `on_event` returns false, DeadlineExceeded after `timeout`
  // (0: none).
  Status watch(const std::vector<uint64_t>& job_ids, const std::function<bool(const JobEvent&)>& on_event,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Streams a job's log (stdout, or stderr) to `sink` from the node that
  // runs or ran it (broker ListNodes -> the node's agent -> ReadLog). With
  // options.follow, waits for a pending job to start and reads until the
  // run ends. Errors: FailedPrecondition when the job never ran (and not
  // following), Unavailable when its node's agent does not answer.
  Status logs(uint64_t job_id, const LogOptions& options, const std::function<void(std::string_view)>& sink);

  // One exchange with an interactive job's terminal (spec.pty), through
  // the agent of `node` (its endpoint from the broker, asked once): types
  // `input` (the bytes after the first `input_offset` already sent), sets
  // the window size when rows and cols are given, and returns the output
  // from `offset` on. NotFound when the job has no terminal there (yet).
  Result<fb::TerminalOutputT> terminal_io(const std::string& node, uint64_t job_id, std::string_view input,
                                          uint64_t input_offset, uint64_t offset, uint16_t rows, uint16_t cols);

  // ---- nodes (resource broker) ----

  Result<std::vector<fb::NodeStatusT>> nodes();
  // A drained node takes no new jobs; running ones finish.
  Status drain(const std::string& node, const std::string& reason);
  Status undrain(const std::string& node);

  // ---- metrics (metrics-aggregator) ----

  // A job's metric names with their last, min and max (and the steps).
  Result<fb::MetricSummariesT> metrics(uint64_t job_id);
  // A series between two steps, downsampled to at most `max_points` keeping
  // its shape.
  Result<fb::SeriesT> series(uint64_t job_id, const std::string& metric, uint32_t max_points = 1000,
                             int64_t from_step = INT64_MIN, int64_t to_step = INT64_MAX);
  // Each run of an experiment (or of `job_ids`) ranked by its best value of
  // `metric` (highest first when `maximize`), with its labels. Without
  // `maximize`, the metric's own goal (common/metric/metric_goal.h, the rule
  // the gateway ranks by too): loss lowest first, accuracy highest first.
  Result<fb::ComparisonT> compare(const std::string& experiment, const std::vector<uint64_t>& job_ids,
                                  const std::string& metric, std::optional<bool> maximize = std::nullopt);

  // ---- money (billing) ----

  Result<fb::UsageReportT> usage(const UsageQuery& query);
  // `month` is "YYYY-MM".
  Result<fb::InvoiceT> invoice(const std::string& account, const std::string& month);
  // What `spec` would cost if it ran its whole time limit at today's prices.
  Result<fb::EstimateT> estimate(const fb::JobSpecT& spec);
  // What renting a cloud node for `spec` would cost at most (the broker's
  // estimate_pool, estimate_micros; "" when no pool fits) and its account's
  // budget left (budget_left_micros, -1: none): CloudStatus.estimate_for.
  Result<fb::CloudReportT> cloud_estimate(const fb::JobSpecT& spec);
  Status set_budget(const Budget& budget);

  // ---- the directory and the audit trail (billing; client/src/directory.cc) ----

  // The site's users, accounts, membership and roles (anyone authenticated).
  Result<fb::DirectoryViewT> directory();
  // Applies `ops` in order, all or none, and returns the new directory; with
  // `replace` the directory becomes exactly what the ops build. Admins only
  // (PermissionDenied); InvalidArgument names the op that cannot apply
  // ("ops[1] RemoveMember: alice is not a member of physics").
  Result<fb::DirectoryViewT> edit_directory(const std::vector<fb::DirectoryOpT>& ops, bool replace);
  // One page of the audit trail, newest first; the reply's next_before asks
  // for the next older page (empty: none). Admins only.
  Result<fb::AuditListT> audit(const AuditQuery& query);

  // ---- any service ----

  // Which service answers at an endpoint: "scheduler", "broker", "metrics",
  // "billing".
  Result<fb::PongT> ping(const std::string& service);

 private:
  rpc::Client& peer(const std::string& service);

  Endpoints endpoints_;
  std::string principal_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::map<std::string, std::unique_ptr<rpc::Client>> peers_;
  std::unique_ptr<security::Site> site_;  // this user's key (null without CURVE)
  Status secured_;                        // why requests cannot be secured, if they cannot
  std::map<std::string, std::string> agent_endpoints_;  // node -> its agent's endpoint (terminal_io)
};

}  // namespace trainyard::client
