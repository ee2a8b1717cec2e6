// Jobs: a filterable table, and a job's page with its state timeline, log
// tail and metric charts.
import { get, onEvent, throttle } from "../api.js";
import { lineChart } from "../charts.js";
import { h, fmtTime, fmtDuration, fmtNum, stateBadge, errorBox } from "../dom.js";

const STATES = ["", "pending", "held", "scheduled", "running", "succeeded", "failed", "cancelled", "timed_out", "node_failure"];

export function jobTable(jobs) {
  return h(
    "table",
    { class: "jobs" },
    h("thead", {}, h("tr", {}, ["Job", "Name", "User", "Account", "Experiment", "State", "GPUs", "Submitted", "Ran"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      jobs.map((j) =>
        h(
          "tr",
          { "data-job": j.job_id },
          h("td", {}, h("a", { href: `#/jobs/${j.job_id}` }, j.job_id)),
          h("td", {}, j.name),
          h("td", {}, j.user),
          h("td", {}, j.account),
          h("td", {}, j.experiment ? h("a", { href: `#/experiments/${encodeURIComponent(j.experiment)}` }, j.experiment) : ""),
          h("td", {}, stateBadge(j.state)),
          h("td", {}, j.gpus ? `${j.gpus}${j.gpu_type ? " × " + j.gpu_type : ""}` : "0"),
          h("td", {}, fmtTime(j.submit_time_ms)),
          h("td", {}, j.start_time_ms ? fmtDuration((j.end_time_ms || Date.now()) - j.start_time_ms) : "—"),
        ),
      ),
    ),
  );
}

export async function jobsPage(app, params) {
  const form = h("form", { class: "filters" });
  const fields = {};
  const state = h("select", { name: "state" }, STATES.map((s) => h("option", { value: s }, s || "any state")));
  fields.state = state;
  for (const f of ["user", "account", "experiment"]) fields[f] = h("input", { name: f, placeholder: f });
  for (const [k, el] of Object.entries(fields)) el.value = params.get(k) || "";
  form.append(...Object.values(fields), h("button", { type: "submit" }, "Filter"));
  const list = h("div", {});
  app.append(h("h1", {}, "Jobs"), form, list);

  async function load() {
    const q = new URLSearchParams();
    for (const [k, el] of Object.entries(fields)) if (el.value) q.set(k, el.value);
    try {
      const r = await get(`/jobs?${q}&limit=500`);
      list.replaceChildren(r.jobs.length ? jobTable(r.jobs) : h("p", { class: "muted" }, "No jobs match."));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of Object.entries(fields)) if (el.value) q.set(k, el.value);
    history.replaceState(null, "", `#/jobs?${q}`);
    load();
  });
  await load();
  const later = throttle(load, 1000);
  return onEvent((topic) => topic.startsWith("job.") && later());
}

function timeline(job) {
  const hist = job.history || [];
  if (!hist.length) return h("p", { class: "muted" }, "No transitions recorded.");
  const start = hist[0].time_ms;
  const end = job.terminal ? hist[hist.length - 1].time_ms : Date.now();
  const span = Math.max(1, end - start);
  const segs = hist.map((t, i) => {
    const next = i + 1 < hist.length ? hist[i + 1].time_ms : end;
    return h("div", {
      class: `seg state-${t.state.toLowerCase()}`,
      title: `${t.state} ${fmtTime(t.time_ms)} ${t.reason || ""}`,
      style: { flexGrow: Math.max(next - t.time_ms, span / 100) },
    }, t.state);
  });
  return h(
    "div",
    {},
    h("div", { class: "timeline" }, segs),
    h("ol", { class: "history" }, hist.map((t) => h("li", {}, stateBadge(t.state), " ", fmtTime(t.time_ms), t.reason ? ` — ${t.reason}` : ""))),
  );
}

export async function jobPage(app, id) {
  const head = h("section", { class: "panel" });
  const tl = h("section", { class: "panel" }, h("h2", {}, "Timeline"));
  const charts = h("section", { class: "panel charts" }, h("h2", {}, "Metrics"));
  const logPre = h("pre", { class: "log" }, "");
  const logs = h("section", { class: "panel" }, h("h2", {}, "Log"), logPre);
  app.append(h("h1", {}, `Job ${id}`), head, tl, charts, logs);
  let job = null;
  let plots = [];

  async function loadJob() {
    try {
      job = await get(`/jobs/${id}`);
    } catch (e) {
      head.replaceChildren(errorBox(e));
      return;
    }
    head.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        ...[
          ["Name", job.name], ["State", stateBadge(job.state)], ["Reason", job.reason || "—"], ["User", job.user],
          ["Account", job.account],
          ["Experiment", job.experiment ? h("a", { href: `#/experiments/${encodeURIComponent(job.experiment)}` }, job.experiment) : "—"],
          ["Nodes", job.nodes.join(", ") || "—"], ["GPUs", `${job.gpus} ${job.gpu_type}`], ["Attempt", job.attempt],
          ["Exit code", job.terminal ? job.exit_code : "—"], ["Submitted", fmtTime(job.submit_time_ms)],
          ["Started", fmtTime(job.start_time_ms)], ["Ended", fmtTime(job.end_time_ms)],
          ["Command", h("code", {}, (job.spec.command || []).join(" "))],
        ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
    );
    tl.replaceChildren(h("h2", {}, "Timeline"), timeline(job));
  }

  async function loadCharts() {
    let names;
    try {
      names = (await get(`/jobs/${id}/metrics`)).metrics;
    } catch (e) {
      charts.replaceChildren(h("h2", {}, "Metrics"), errorBox(e));
      return;
    }
    const user = names.filter((m) => !m.name.startsWith("sys/"));
    const shown = [...user, ...names.filter((m) => m.name.startsWith("sys/"))].slice(0, 8);
    plots.forEach((p) => p.destroy());
    plots = [];
    const boxes = [];
    for (const m of shown) {
      const s = await get(`/jobs/${id}/series?name=${encodeURIComponent(m.name)}&max_points=800`);
      const box = h("div", { class: "chart", "data-metric": m.name, "data-points": s.steps.length });
      boxes.push([box, m, s]);
    }
    charts.replaceChildren(
      h("h2", {}, "Metrics"),
      shown.length ? h("div", { class: "chart-grid" }, boxes.map((b) => b[0])) : h("p", { class: "muted" }, "No metrics reported yet."),
    );
    for (const [box, m, s] of boxes) {
      plots.push(lineChart(box, `${m.name} (last ${fmtNum(m.last)} @ ${m.last_step})`, [{ label: m.name, steps: s.steps, values: s.values }]));
    }
  }

  let logOffset = null;
  async function loadLog() {
    if (!job || !job.nodes.length) {
      logPre.textContent = job ? "The job has not started on a node yet." : "";
      return;
    }
    try {
      const q = logOffset === null ? "tail=65536" : `offset=${logOffset}&tail=1048576`;
      const l = await get(`/jobs/${id}/logs?${q}`);
      logPre.textContent = logOffset === null ? l.data : logPre.textContent + l.data;
      logOffset = l.next_offset;
      logPre.scrollTop = logPre.scrollHeight;
    } catch (e) {
      logs.replaceChildren(h("h2", {}, "Log"), errorBox(e), logPre);
    }
  }

  await loadJob();
  await Promise.all([loadCharts(), loadLog()]);
  const chartsLater = throttle(loadCharts, 2000);
  const jobLater = throttle(async () => {
    await loadJob();
    loadLog();
  }, 500);
  const timer = setInterval(() => job && !job.terminal && loadLog(), 3000);
  const off = onEvent((topic, d) => {
    if (d.job_id !== Number(id)) return;
    if (topic === "metric.batch") chartsLater();
    else jobLater();
  });
  return () => {
    off();
    clearInterval(timer);
    plots.forEach((p) => p.destroy());
  };
}
