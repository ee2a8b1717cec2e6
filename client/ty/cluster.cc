// ty's commands about the cluster, metrics and money: nodes (drain,
// undrain), metrics, compare, usage, invoice, budget.
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

}  // namespace

void add_cluster_commands(CLI::App& app, Context& ctx, Action& action) {
  {
    auto* cmd = app.add_subcommand("nodes", "List nodes (GPUs, state); 'nodes drain' and 'nodes undrain' change them");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->require_subcommand(0, 1);
    auto* drain = cmd->add_subcommand("drain", "Stop placing new jobs on a node (running ones finish)");
    auto node = std::make_shared<std::string>(), reason = std::make_shared<std::string>();
    drain->add_option("NODE", *node, "Node name")->required();
    drain->add_option("--reason", *reason, "Why (shown by ty nodes)")->required();
    drain->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto s = c->drain(*node, *reason);
        if (!s) return fail(s);
        std::cout << "Drained " << *node << "\n";
        return kExitOk;
      };
    });
    auto* undrain = cmd->add_subcommand("undrain", "Let a drained node take jobs again");
    auto unode = std::make_shared<std::string>();
    undrain->add_option("NODE", *unode, "Node name")->required();
    undrain->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto s = c->undrain(*unode);
        if (!s) return fail(s);
        std::cout << "Undrained " << *unode << "\n";
        return kExitOk;
      };
    });
    cmd->callback([=, &ctx, &action] {
      if (drain->parsed() || undrain->parsed()) return;  // theirs is the action
      action = [=, &ctx]() -> int {
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto nodes = c->nodes();
        if (!nodes) return fail(nodes.status());
        if (*json) {
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
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("metrics", "A job's metrics (last and best values), or one metric as a plot");
    auto job = std::make_shared<uint64_t>(0);
    auto metric = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto points = std::make_shared<uint32_t>(1000);
    auto width = std::make_shared<int>(72), height = std::make_shared<int>(16);
    cmd->add_option("JOB", *job, "Job id")->required()->check(CLI::PositiveNumber);
    cmd->add_option("--metric", *metric, "Plot this metric's series (downsampled)");
    cmd->add_option("--points", *points, "At most this many points of the series (default 1000)");
    cmd->add_option("--width", *width, "Plot width in characters (default 72)");
    cmd->add_option("--height", *height, "Plot height in lines (default 16)");
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        if (!metric->empty()) {
          auto s = c->series(*job, *metric, *points);
          if (!s) return fail(s.status());
          if (*json) {
            std::cout << nlohmann::json{{"job_id", s->job_id}, {"name", s->name}, {"steps", s->steps},
                                        {"values", s->values}, {"total_points", s->total_points}}
                             .dump()
                      << "\n";
            return kExitOk;
          }
          std::cout << *metric << " of job " << *job << " (" << s->total_points << " points"
                    << (s->steps.size() < s->total_points ? ", " + std::to_string(s->steps.size()) + " shown" : "")
                    << ")\n";
          std::cout << render_plot(s->steps, s->values, *width, *height);
          return kExitOk;
        }
        auto m = c->metrics(*job);
        if (!m) return fail(m.status());
        if (*json) {
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
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("compare", "Rank the runs of an experiment by their best value of a metric");
    auto experiment = std::make_shared<std::string>(), metric = std::make_shared<std::string>();
    auto jobs = std::make_shared<std::vector<uint64_t>>();
    auto max = std::make_shared<bool>(false), min = std::make_shared<bool>(false), json = std::make_shared<bool>(false);
    cmd->add_option("--experiment", *experiment, "The experiment whose runs to compare");
    cmd->add_option("--jobs", *jobs, "Or these jobs (comma-separated)")->delimiter(',');
    cmd->add_option("--metric", *metric, "The metric to rank by")->required();
    auto* mx = cmd->add_flag("--max", *max, "Higher is better");
    cmd->add_flag("--min", *min, "Lower is better")->excludes(mx);
    cmd->footer("Without --max or --min the metric's name decides, as on the dashboard: names with acc, auc, f1,\n"
                "precision, recall, score, reward, bleu, iou or map are better high; the rest (loss, error...) low.");
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        if (experiment->empty() && jobs->empty()) {
          std::cerr << "ty compare: give --experiment NAME or --jobs ID,ID...\n";
          return kExitUsage;
        }
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        MetricGoal goal = *max ? MetricGoal::kMax : *min ? MetricGoal::kMin : default_goal(*metric);
        bool maximize = goal == MetricGoal::kMax;
        auto r = c->compare(*experiment, *jobs, *metric, maximize);
        if (!r) return fail(r.status());
        if (*json) {
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
        std::cout << *metric << " (" << (maximize ? "higher" : "lower") << " is better)\n" << t.render();
        return kExitOk;
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("usage", "GPU, CPU and memory time used, and its cost");
    auto account = std::make_shared<std::string>(), user = std::make_shared<std::string>(),
         since = std::make_shared<std::string>(), until = std::make_shared<std::string>(),
         by = std::make_shared<std::string>("account");
    auto job = std::make_shared<uint64_t>(0);
    auto json = std::make_shared<bool>(false);
    cmd->add_option("-A,--account", *account, "Only this account");
    cmd->add_option("-u,--user", *user, "Only this user");
    cmd->add_option("--job", *job, "Only this job");
    cmd->add_option("--since", *since, "From this date (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)");
    cmd->add_option("--until", *until, "Up to this date (default: now)");
    cmd->add_option("--by", *by, "Group by account, user, job, day or resource (default account)")
        ->check(CLI::IsMember({"account", "user", "job", "day", "resource"}));
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        client::UsageQuery q;
        q.account = *account;
        q.user = *user;
        q.job_id = *job;
        q.group_by = *by;
        if (!since->empty() && !parse_date(*since, &q.since_ns)) {
          std::cerr << "ty usage: --since '" << *since << "' is not YYYY-MM-DD[THH:MM[:SS]]\n";
          return kExitUsage;
        }
        if (!until->empty() && !parse_date(*until, &q.until_ns)) {
          std::cerr << "ty usage: --until '" << *until << "' is not YYYY-MM-DD[THH:MM[:SS]]\n";
          return kExitUsage;
        }
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto r = c->usage(q);
        if (!r) return fail(r.status());
        if (*json) {
          nlohmann::json rows = nlohmann::json::array();
          for (auto& x : r->rows) {
            rows.push_back({{"key", x->key}, {"gpu_ms", x->gpu_ms}, {"cpu_ms", x->cpu_ms},
                            {"memory_mb_ms", x->memory_mb_ms}, {"cost_micros", x->cost_micros}});
          }
          std::cout << nlohmann::json{{"currency", r->currency}, {"group_by", *by}, {"rows", rows}}.dump(2) << "\n";
          return kExitOk;
        }
        std::string key = *by;
        for (auto& ch : key) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        Table t({key, "GPU-HOURS", "CPU-HOURS", "MEM-GB-HOURS", "COST (" + r->currency + ")"});
        int64_t total = 0;
        for (auto& x : r->rows) {
          t.add({x->key, format_hours(x->gpu_ms), format_hours(x->cpu_ms), format_hours(x->memory_mb_ms / 1024),
                 format_money(x->cost_micros)});
          total += x->cost_micros;
        }
        t.add({"total", "", "", "", format_money(total)});
        std::cout << t.render();
        return kExitOk;
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("invoice", "An account's invoice for a month");
    auto account = std::make_shared<std::string>(), month = std::make_shared<std::string>();
    auto as_csv = std::make_shared<bool>(false), json = std::make_shared<bool>(false);
    cmd->add_option("-A,--account", *account, "The account")->required();
    cmd->add_option("--month", *month, "The month, YYYY-MM")->required();
    auto* c1 = cmd->add_flag("--csv", *as_csv, "Print CSV");
    cmd->add_flag("--json", *json, "Print JSON")->excludes(c1);
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        if (!valid_month(*month)) {
          std::cerr << "ty invoice: --month '" << *month << "' is not YYYY-MM\n";
          return kExitUsage;
        }
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto r = c->invoice(*account, *month);
        if (!r) return fail(r.status());
        if (*json) {
          nlohmann::json lines = nlohmann::json::array();
          for (auto& l : r->lines) {
            lines.push_back({{"user", l->user}, {"resource", l->resource}, {"gpu_type", l->gpu_type},
                             {"quantity_ms", l->quantity_ms}, {"cost_micros", l->cost_micros}});
          }
          std::cout << nlohmann::json{{"account", r->account}, {"month", r->month}, {"currency", r->currency},
                                      {"lines", lines}, {"total_micros", r->total_micros}}
                           .dump(2)
                    << "\n";
          return kExitOk;
        }
        if (*as_csv) {
          std::cout << "account,month,user,resource,gpu_type,hours,cost,currency\n";
          for (auto& l : r->lines) {
            std::cout << csv(r->account) << "," << r->month << "," << csv(l->user) << "," << csv(l->resource) << ","
                      << csv(l->gpu_type) << "," << format_hours(l->quantity_ms) << "," << format_money(l->cost_micros)
                      << "," << r->currency << "\n";
          }
          std::cout << csv(r->account) << "," << r->month << ",total,,,," << format_money(r->total_micros) << ","
                    << r->currency << "\n";
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
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("budget", "Set an account's monthly budget (admins)");
    cmd->require_subcommand(1);
    auto* set = cmd->add_subcommand("set", "Set the monthly budget of ACCOUNT");
    auto account = std::make_shared<std::string>(), amount = std::make_shared<std::string>();
    auto hard = std::make_shared<bool>(false), stop = std::make_shared<bool>(false);
    auto soft = std::make_shared<uint32_t>(80);
    set->add_option("ACCOUNT", *account, "The account")->required();
    set->add_option("--monthly", *amount, "Money per month, in the billing currency (e.g. 500 or 499.99)")->required();
    set->add_flag("--hard", *hard, "Block new jobs of the account once the budget is spent");
    set->add_flag("--stop-running", *stop, "With --hard: also stop its running jobs");
    set->add_option("--soft-percent", *soft, "Warn (account.warning) at this percentage (default 80)")
        ->check(CLI::Range(1, 100));
    set->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        client::Budget b;
        b.account = *account;
        if (!parse_money(*amount, &b.monthly_micros)) {
          std::cerr << "ty budget set: --monthly '" << *amount << "' is not an amount (e.g. 500 or 499.99)\n";
          return kExitUsage;
        }
        if (*stop && !*hard) {
          std::cerr << "ty budget set: --stop-running needs --hard\n";
          return kExitUsage;
        }
        b.hard = *hard;
        b.stop_running = *stop;
        b.soft_percent = *soft;
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto s = c->set_budget(b);
        if (!s) return fail(s);
        std::cout << "Budget of " << b.account << ": " << format_money(b.monthly_micros) << " a month"
                  << (b.hard ? ", hard" : ", soft") << (b.stop_running ? ", stops running jobs" : "") << "\n";
        return kExitOk;
      };
    });
  }
}

}  // namespace trainyard::ty
