// ty's commands about the cluster, metrics and money: nodes (drain,
// undrain), metrics, compare, usage, invoice, budget. Each command is an
// add_<command>() that registers its flags and an <command>_action() that
// runs it.
#include <iostream>

#include "commands.h"
#include "format.h"
#include "metric/metric_goal.h"

namespace trainyard::ty {
namespace {

std::string labels_text(const std::vector<std::unique_ptr<fb::KeyValueT>>& labels) {
  std::string out;
  for (auto& kv : labels) out += (out.empty() ? "" : " ") + kv->key + "=" + kv->value;
  return out;
}

nlohmann::json labels_json(const std::vector<std::unique_ptr<fb::KeyValueT>>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (auto& kv : labels) j[kv->key] = kv->value;
  return j;
}

// CSV field quoting (RFC 4180).
std::string csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

bool valid_month(const std::string& m) {
  return m.size() == 7 && std::isdigit(static_cast<unsigned char>(m[0])) && std::isdigit(static_cast<unsigned char>(m[1])) &&
         std::isdigit(static_cast<unsigned char>(m[2])) && std::isdigit(static_cast<unsigned char>(m[3])) && m[4] == '-' &&
         ((m[5] == '0' && m[6] >= '1' && m[6] <= '9') || (m[5] == '1' && m[6] >= '0' && m[6] <= '2'));
}

// ---- ty nodes [drain|undrain] ----

int drain_action(Context& ctx, const std::string& node, const std::string& reason) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto s = c->drain(node, reason);
  if (!s) return fail(s);
  std::cout << "Drained " << node << "\n";
  return kExitOk;
}

int undrain_action(Context& ctx, const std::string& node) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto s = c->undrain(node);
  if (!s) return fail(s);
  std::cout << "Undrained " << node << "\n";
  return kExitOk;
}

int nodes_action(Context& ctx, bool json) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto nodes = c->nodes();
  if (!nodes) return fail(nodes.status());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& n : *nodes) out.push_back(to_json(n));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"NODE", "STATE", "PARTITION", "GPUS(USED/TOTAL)", "TYPE", "CPUS", "MEMORY", "REASON"});
  for (auto& n : *nodes) {
    if (!n.node) continue;
    std::string type;
    for (auto& g : n.node->gpus) {
      if (type.find(g->type) == std::string::npos) type += (type.empty() ? "" : ",") + g->type;
    }
    std::string state = !n.up ? "down" : n.drained ? "drained" : n.allocated_gpus.empty() ? "idle" : "allocated";
    t.add({n.node->name, state, n.node->partition.empty() ? "-" : n.node->partition,
           std::to_string(n.allocated_gpus.size()) + "/" + std::to_string(n.node->gpus.size()),
           type.empty() ? "-" : type, std::to_string(n.node->cpus),
           std::to_string(n.node->memory_mb / 1024) + " GB", n.reason});
  }
  std::cout << t.render();
  return kExitOk;
}

struct NodesFlags {
  bool json = false;
  std::string node, reason;  // drain
  std::string unode;         // undrain
};

void add_nodes(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("nodes", "List nodes (GPUs, state); 'nodes drain' and 'nodes undrain' change them");
  auto f = std::make_shared<NodesFlags>();
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->require_subcommand(0, 1);
  auto* drain = cmd->add_subcommand("drain", "Stop placing new jobs on a node (running ones finish)");
  drain->add_option("NODE", f->node, "Node name")->required();
  drain->add_option("--reason", f->reason, "Why (shown by ty nodes)")->required();
  drain->callback([f, &ctx, &action] { action = [f, &ctx] { return drain_action(ctx, f->node, f->reason); }; });
  auto* undrain = cmd->add_subcommand("undrain", "Let a drained node take jobs again");
  undrain->add_option("NODE", f->unode, "Node name")->required();
  undrain->callback([f, &ctx, &action] { action = [f, &ctx] { return undrain_action(ctx, f->unode); }; });
  cmd->callback([=, &ctx, &action] {
    if (drain->parsed() || undrain->parsed()) return;  // theirs is the action
    action = [f, &ctx] { return nodes_action(ctx, f->json); };
  });
}

// ---- ty metrics JOB [--metric NAME] ----

struct MetricsFlags {
  uint64_t job = 0;
  std::string metric;
  bool json = false;
  uint32_t points = 1000;
  int width = 72, height = 16;
};

// One metric's series as a plot (or JSON).
int series_action(client::Client& c, const MetricsFlags& f) {
  auto s = c.series(f.job, f.metric, f.points);
  if (!s) return fail(s.status());
  if (f.json) {
    std::cout << nlohmann::json{{"job_id", s->job_id}, {"name", s->name}, {"steps", s->steps},
                                {"values", s->values}, {"total_points", s->total_points}}
                     .dump()
              << "\n";
    return kExitOk;
  }
  std::cout << f.metric << " of job " << f.job << " (" << s->total_points << " points"
            << (s->steps.size() < s->total_points ? ", " + std::to_string(s->steps.size()) + " shown" : "")
            << ")\n";
  std::cout << render_plot(s->steps, s->values, f.width, f.height);
  return kExitOk;
}

int metrics_action(Context& ctx, const MetricsFlags& f) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  if (!f.metric.empty()) return series_action(*c, f);
  auto m = c->metrics(f.job);
  if (!m) return fail(m.status());
  if (f.json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& x : m->metrics) {
      out.push_back({{"name", x->name}, {"count", x->count}, {"last", x->last}, {"last_step", x->last_step},
                     {"min", x->min}, {"min_step", x->min_step}, {"max", x->max}, {"max_step", x->max_step}});
    }
    std::cout << nlohmann::json{{"job_id", m->job_id}, {"metrics", out}}.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"METRIC", "POINTS", "LAST", "AT STEP", "MIN", "AT STEP", "MAX", "AT STEP"});
  for (auto& x : m->metrics) {
    t.add({x->name, std::to_string(x->count), format_number(x->last), std::to_string(x->last_step),
           format_number(x->min), std::to_string(x->min_step), format_number(x->max), std::to_string(x->max_step)});
  }
  std::cout << t.render();
  return kExitOk;
}

void add_metrics(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("metrics", "A job's metrics (last and best values), or one metric as a plot");
  auto f = std::make_shared<MetricsFlags>();
  cmd->add_option("JOB", f->job, "Job id")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--metric", f->metric, "Plot this metric's series (downsampled)");
  cmd->add_option("--points", f->points, "At most this many points of the series (default 1000)");
  cmd->add_option("--width", f->width, "Plot width in characters (default 72)");
  cmd->add_option("--height", f->height, "Plot height in lines (default 16)");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return metrics_action(ctx, *f); }; });
}

// ---- ty compare ----

struct CompareFlags {
  std::string experiment, metric;
  std::vector<uint64_t> jobs;
  bool max = false, min = false, json = false;
};

int compare_action(Context& ctx, const CompareFlags& f) {
  if (f.experiment.empty() && f.jobs.empty()) {
    std::cerr << "ty compare: give --experiment NAME or --jobs ID,ID...\n";
    return kExitUsage;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  MetricGoal goal = f.max ? MetricGoal::kMax : f.min ? MetricGoal::kMin : default_goal(f.metric);
  bool maximize = goal == MetricGoal::kMax;
  auto r = c->compare(f.experiment, f.jobs, f.metric, maximize);
  if (!r) return fail(r.status());
  if (f.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (auto& x : r->rows) {
      rows.push_back({{"job_id", x->job_id}, {"name", x->name}, {"best", x->best_value},
                      {"best_step", x->best_step}, {"final", x->final_value}, {"final_step", x->final_step},
                      {"labels", labels_json(x->labels)}});
    }
    nlohmann::json out{{"metric", r->metric}, {"maximize", maximize}, {"goal", goal_name(goal)}, {"runs", rows}};
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"RANK", "JOBID", "NAME", "BEST", "AT STEP", "FINAL", "AT STEP", "LABELS"});
  int rank = 0;
  for (auto& x : r->rows) {
    t.add({std::to_string(++rank), std::to_string(x->job_id), x->name, format_number(x->best_value),
           std::to_string(x->best_step), format_number(x->final_value), std::to_string(x->final_step),
           labels_text(x->labels)});
  }
  std::cout << f.metric << " (" << (maximize ? "higher" : "lower") << " is better)\n" << t.render();
  return kExitOk;
}

void add_compare(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("compare", "Rank the runs of an experiment by their best value of a metric");
  auto f = std::make_shared<CompareFlags>();
  cmd->add_option("--experiment", f->experiment, "The experiment whose runs to compare");
  cmd->add_option("--jobs", f->jobs, "Or these jobs (comma-separated)")->delimiter(',');
  cmd->add_option("--metric", f->metric, "The metric to rank by")->required();
  auto* mx = cmd->add_flag("--max", f->max, "Higher is better");
  cmd->add_flag("--min", f->min, "Lower is better")->excludes(mx);
  cmd->footer("Without --max or --min the metric's name decides, as on the dashboard: names with acc, auc, f1,\n"
              "precision, recall, score, reward, bleu, iou or map are better high; the rest (loss, error...) low.");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return compare_action(ctx, *f); }; });
}

// ---- ty usage ----

struct UsageFlags {
  std::string account, user, since, until, by = "account";
  uint64_t job = 0;
  bool json = false;
};

void print_usage_table(const fb::UsageReportT& r, const std::string& by) {
  std::string key = by;
  for (auto& ch : key) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Table t({key, "GPU-HOURS", "CPU-HOURS", "MEM-GB-HOURS", "COST (" + r.currency + ")"});
  int64_t total = 0;
  for (auto& x : r.rows) {
    t.add({x->key, format_hours(x->gpu_ms), format_hours(x->cpu_ms), format_hours(x->memory_mb_ms / 1024),
           format_money(x->cost_micros)});
    total += x->cost_micros;
  }
  t.add({"total", "", "", "", format_money(total)});
  std::cout << t.render();
}

int usage_action(Context& ctx, const UsageFlags& f) {
  client::UsageQuery q;
  q.account = f.account;
  q.user = f.user;
  q.job_id = f.job;
  q.group_by = f.by;
  if (!f.since.empty() && !parse_date(f.since, &q.since_ns)) {
    std::cerr << "ty usage: --since '" << f.since << "' is not YYYY-MM-DD[THH:MM[:SS]]\n";
    return kExitUsage;
  }
  if (!f.until.empty() && !parse_date(f.until, &q.until_ns)) {
    std::cerr << "ty usage: --until '" << f.until << "' is not YYYY-MM-DD[THH:MM[:SS]]\n";
    return kExitUsage;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto r = c->usage(q);
  if (!r) return fail(r.status());
  if (!f.json) {
    print_usage_table(*r, f.by);
    return kExitOk;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (auto& x : r->rows) {
    rows.push_back({{"key", x->key}, {"gpu_ms", x->gpu_ms}, {"cpu_ms", x->cpu_ms},
                    {"memory_mb_ms", x->memory_mb_ms}, {"cost_micros", x->cost_micros}});
  }
  std::cout << nlohmann::json{{"currency", r->currency}, {"group_by", f.by}, {"rows", rows}}.dump(2) << "\n";
  return kExitOk;
}

void add_usage(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("usage", "GPU, CPU and memory time used, and its cost");
  auto f = std::make_shared<UsageFlags>();
  cmd->add_option("-A,--account", f->account, "Only this account");
  cmd->add_option("-u,--user", f->user, "Only this user");
  cmd->add_option("--job", f->job, "Only this job");
  cmd->add_option("--since", f->since, "From this date (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)");
  cmd->add_option("--until", f->until, "Up to this date (default: now)");
  cmd->add_option("--by", f->by, "Group by account, user, job, day or resource (default account)")
      ->check(CLI::IsMember({"account", "user", "job", "day", "resource"}));
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return usage_action(ctx, *f); }; });
}

// ---- ty invoice ----

struct InvoiceFlags {
  std::string account, month;
  bool csv = false, json = false;
};

void print_invoice_json(const fb::InvoiceT& r) {
  nlohmann::json lines = nlohmann::json::array();
  for (auto& l : r.lines) {
    lines.push_back({{"user", l->user}, {"resource", l->resource}, {"gpu_type", l->gpu_type},
                     {"quantity_ms", l->quantity_ms}, {"cost_micros", l->cost_micros}});
  }
  std::cout << nlohmann::json{{"account", r.account}, {"month", r.month}, {"currency", r.currency},
                              {"lines", lines}, {"total_micros", r.total_micros}}
                   .dump(2)
            << "\n";
}

void print_invoice_csv(const fb::InvoiceT& r) {
  std::cout << "account,month,user,resource,gpu_type,hours,cost,currency\n";
  for (auto& l : r.lines) {
    std::cout << csv(r.account) << "," << r.month << "," << csv(l->user) << "," << csv(l->resource) << ","
              << csv(l->gpu_type) << "," << format_hours(l->quantity_ms) << "," << format_money(l->cost_micros)
              << "," << r.currency << "\n";
  }
  std::cout << csv(r.account) << "," << r.month << ",total,,,," << format_money(r.total_micros) << ","
            << r.currency << "\n";
}

int invoice_action(Context& ctx, const InvoiceFlags& f) {
  if (!valid_month(f.month)) {
    std::cerr << "ty invoice: --month '" << f.month << "' is not YYYY-MM\n";
    return kExitUsage;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto r = c->invoice(f.account, f.month);
  if (!r) return fail(r.status());
  if (f.json) {
    print_invoice_json(*r);
    return kExitOk;
  }
  if (f.csv) {
    print_invoice_csv(*r);
    return kExitOk;
  }
  std::cout << "Invoice for " << r->account << ", " << r->month << "\n";
  Table t({"USER", "RESOURCE", "GPU TYPE", "HOURS", "COST (" + r->currency + ")"});
  for (auto& l : r->lines) {
    t.add({l->user, l->resource, l->gpu_type.empty() ? "-" : l->gpu_type, format_hours(l->quantity_ms),
           format_money(l->cost_micros)});
  }
  t.add({"total", "", "", "", format_money(r->total_micros)});
  std::cout << t.render();
  return kExitOk;
}

void add_invoice(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("invoice", "An account's invoice for a month");
  auto f = std::make_shared<InvoiceFlags>();
  cmd->add_option("-A,--account", f->account, "The account")->required();
  cmd->add_option("--month", f->month, "The month, YYYY-MM")->required();
  auto* c1 = cmd->add_flag("--csv", f->csv, "Print CSV");
  cmd->add_flag("--json", f->json, "Print JSON")->excludes(c1);
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return invoice_action(ctx, *f); }; });
}

// ---- ty budget set ----

struct BudgetFlags {
  std::string account, amount;
  bool hard = false, stop = false;
  uint32_t soft = 80;
};

int budget_set_action(Context& ctx, const BudgetFlags& f) {
  client::Budget b;
  b.account = f.account;
  if (!parse_money(f.amount, &b.monthly_micros)) {
    std::cerr << "ty budget set: --monthly '" << f.amount << "' is not an amount (e.g. 500 or 499.99)\n";
    return kExitUsage;
  }
  if (f.stop && !f.hard) {
    std::cerr << "ty budget set: --stop-running needs --hard\n";
    return kExitUsage;
  }
  b.hard = f.hard;
  b.stop_running = f.stop;
  b.soft_percent = f.soft;
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto s = c->set_budget(b);
  if (!s) return fail(s);
  std::cout << "Budget of " << b.account << ": " << format_money(b.monthly_micros) << " a month"
            << (b.hard ? ", hard" : ", soft") << (b.stop_running ? ", stops running jobs" : "") << "\n";
  return kExitOk;
}

void add_budget(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("budget", "Set an account's monthly budget (admins)");
  cmd->require_subcommand(1);
  auto* set = cmd->add_subcommand("set", "Set the monthly budget of ACCOUNT");
  auto f = std::make_shared<BudgetFlags>();
  set->add_option("ACCOUNT", f->account, "The account")->required();
  set->add_option("--monthly", f->amount, "Money per month, in the billing currency (e.g. 500 or 499.99)")->required();
  set->add_flag("--hard", f->hard, "Block new jobs of the account once the budget is spent");
  set->add_flag("--stop-running", f->stop, "With --hard: also stop its running jobs");
  set->add_option("--soft-percent", f->soft, "Warn (account.warning) at this percentage (default 80)")
      ->check(CLI::Range(1, 100));
  set->callback([f, &ctx, &action] { action = [f, &ctx] { return budget_set_action(ctx, *f); }; });
}

}  // namespace

void add_cluster_commands(CLI::App& app, Context& ctx, Action& action) {
  add_nodes(app, ctx, action);
  add_metrics(app, ctx, action);
  add_compare(app, ctx, action);
  add_usage(app, ctx, action);
  add_invoice(app, ctx, action);
  add_budget(app, ctx, action);
}

}  // namespace trainyard::ty
