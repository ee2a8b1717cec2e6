// Experiments: the list, and one experiment with its runs' curves overlaid,
// a table of their best values and parameters ranked, the best highlighted.
import { get, onEvent, throttle } from "../api.js";
import { lineChart, color } from "../charts.js";
import { h, fmtTime, fmtNum, stateBadge, errorBox } from "../dom.js";

export async function experimentsPage(app) {
  const list = h("div", {});
  app.append(h("h1", {}, "Experiments"), list);
  try {
    const r = await get("/experiments");
    list.replaceChildren(
      r.experiments.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["Experiment", "Runs", "Active", "Succeeded", "Failed", "Users", "Last submit"].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              {},
              r.experiments.map((e) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("a", { href: `#/experiments/${encodeURIComponent(e.name)}` }, e.name)),
                  h("td", {}, e.jobs), h("td", {}, e.active), h("td", {}, e.succeeded), h("td", {}, e.failed),
                  h("td", {}, e.users.join(", ")), h("td", {}, fmtTime(e.last_submit_ms)),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No experiments yet: submit jobs with an experiment name."),
    );
  } catch (e) {
    list.replaceChildren(errorBox(e));
  }
}

export async function experimentPage(app, name, params) {
  const controls = h("form", { class: "filters" });
  const ranking = h("section", { class: "panel" }, h("h2", {}, "Runs, best first"));
  const chartBox = h("section", { class: "panel" }, h("h2", {}, "Curves"));
  app.append(h("h1", {}, `Experiment ${name}`), controls, ranking, chartBox);
  let info;
  try {
    info = await get(`/experiments/${encodeURIComponent(name)}`);
  } catch (e) {
    ranking.replaceChildren(errorBox(e));
    return;
  }
  const userMetrics = info.metrics.filter((m) => !m.startsWith("sys/"));
  const metrics = userMetrics.length ? userMetrics : info.metrics;
  const preferred = params.get("metric") || metrics.find((m) => /loss/i.test(m)) || metrics[0];
  const metricSel = h("select", { name: "metric" }, metrics.map((m) => h("option", { value: m, selected: m === preferred }, m)));
  const goalSel = h("select", { name: "goal" }, ["auto", "min", "max"].map((g) => h("option", { value: g, selected: g === (params.get("goal") || "auto") }, g)));
  controls.append(h("label", {}, "metric ", metricSel), h("label", {}, "goal ", goalSel));
  let plot = null;

  async function load() {
    const metric = metricSel.value;
    if (!metric) {
      ranking.replaceChildren(h("h2", {}, "Runs"), h("p", { class: "muted" }, "No metrics reported yet."));
      return;
    }
    let cmp;
    try {
      cmp = await get(`/experiments/${encodeURIComponent(name)}/compare?metric=${encodeURIComponent(metric)}&goal=${goalSel.value}`);
    } catch (e) {
      ranking.replaceChildren(h("h2", {}, "Runs"), errorBox(e));
      return;
    }
    const paramKeys = [...new Set(cmp.rows.flatMap((r) => Object.keys(r.params || {})))].sort();
    ranking.replaceChildren(
      h("h2", {}, `Runs by ${cmp.goal === "max" ? "highest" : "lowest"} ${metric}`),
      h(
        "table",
        { class: "ranking" },
        h("thead", {}, h("tr", {}, ["#", "Job", "Name", "State", `best ${metric}`, "at step", "final", ...paramKeys].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          cmp.rows.map((r, i) =>
            h(
              "tr",
              { class: r.job_id === cmp.best_job_id ? "best" : "", "data-rank": r.rank, "data-job": r.job_id },
              h("td", {}, r.rank, r.job_id === cmp.best_job_id ? " ★" : ""),
              h("td", {}, h("span", { class: "swatch", style: { background: color(i) } }), h("a", { href: `#/jobs/${r.job_id}` }, r.job_id)),
              h("td", {}, r.name),
              h("td", {}, r.state ? stateBadge(r.state) : "—"),
              h("td", { class: "num" }, fmtNum(r.best_value)),
              h("td", { class: "num" }, r.best_step),
              h("td", { class: "num" }, fmtNum(r.final_value)),
              ...paramKeys.map((k) => h("td", {}, r.params?.[k] ?? "")),
            ),
          ),
        ),
      ),
    );
    const runs = cmp.rows.slice(0, 12);
    const series = await Promise.all(
      runs.map((r) => get(`/jobs/${r.job_id}/series?name=${encodeURIComponent(metric)}&max_points=500`).catch(() => null)),
    );
    if (plot) plot.destroy();
    const box = h("div", { class: "chart", "data-runs": series.filter(Boolean).length });
    chartBox.replaceChildren(h("h2", {}, `${metric}, ${runs.length} runs overlaid`), box);
    plot = lineChart(
      box,
      metric,
      series.map((s, i) => ({
        label: `job ${runs[i].job_id}`,
        steps: s ? s.steps : [],
        values: s ? s.values : [],
        width: runs[i].job_id === cmp.best_job_id ? 3 : 1.2,
      })),
      { height: 320 },
    );
  }
  metricSel.addEventListener("change", load);
  goalSel.addEventListener("change", load);
  await load();
  const ids = new Set(info.jobs.map((j) => j.job_id));
  const later = throttle(load, 3000);
  const off = onEvent((topic, d) => ids.has(d.job_id) && (topic === "metric.batch" || topic === "job.state") && later());
  return () => {
    off();
    if (plot) plot.destroy();
  };
}
