// Overview: GPUs busy/idle per type, queue length, running jobs and recent
// events, kept live by the event stream.
import { get, onEvent, throttle } from "../api.js";
import { h, fmtTime, fmtDuration, stateBadge, errorBox } from "../dom.js";

function gpuBars(gpus) {
  const types = Object.entries(gpus.by_type || {});
  if (!types.length) return h("p", { class: "muted" }, "No GPUs registered yet.");
  return h(
    "div",
    { class: "gpu-bars" },
    types.map(([type, c]) =>
      h(
        "div",
        { class: "gpu-row", "data-gpu-type": type },
        h("span", { class: "gpu-type" }, type),
        h(
          "div",
          { class: "bar" },
          h("div", { class: "bar-busy", style: { width: `${(100 * c.allocated) / Math.max(1, c.total)}%` } }),
          h("div", { class: "bar-down", style: { width: `${(100 * c.unavailable) / Math.max(1, c.total)}%` } }),
        ),
        h("span", { class: "gpu-count" }, `${c.allocated} busy · ${c.idle} idle · ${c.total} total`),
      ),
    ),
  );
}

function stat(label, value, id) {
  return h("div", { class: "stat", id }, h("div", { class: "stat-value" }, value), h("div", { class: "stat-label" }, label));
}

function eventLine(topic, d) {
  let text = topic;
  if (topic === "job.state") text = `job ${d.job_id}: ${d.from} → ${d.to}${d.reason ? " (" + d.reason + ")" : ""}`;
  else if (topic === "job.submitted") text = `job ${d.job_id} submitted by ${d.user}${d.experiment ? " in " + d.experiment : ""}`;
  else if (topic.startsWith("node.")) text = `node ${d.node}: ${topic.slice(5)}${d.reason ? " (" + d.reason + ")" : ""}`;
  else if (topic.startsWith("lease.")) text = `lease ${d.lease_id} ${topic.split(".").pop()} for job ${d.job_id} on ${d.node}`;
  else if (topic.startsWith("run.")) text = `job ${d.job_id} ${topic === "run.started" ? "started" : "finished: " + d.outcome} on ${d.node}`;
  else if (topic.startsWith("account.")) text = `account ${d.account}: ${topic.slice(8)}`;
  return h("li", {}, h("time", {}, new Date(d.time_ms).toLocaleTimeString()), " ", text);
}

export async function overview(app) {
  const summary = h("section", { class: "cards" });
  const gpus = h("section", { class: "panel" }, h("h2", {}, "GPUs"));
  const running = h("section", { class: "panel" }, h("h2", {}, "Running jobs"));
  const events = h("ul", { class: "events" });
  app.append(
    h("h1", {}, "Cluster"),
    summary,
    h("div", { class: "grid2" }, gpus, h("section", { class: "panel" }, h("h2", {}, "Recent events"), events)),
    running,
  );

  async function refresh() {
    try {
      const [c, jobs] = await Promise.all([get("/cluster"), get("/jobs?state=running,scheduled&limit=100")]);
      summary.replaceChildren(
        stat("GPUs busy", `${c.gpus.allocated} / ${c.gpus.total}`, "stat-gpus"),
        stat("Queue", c.queue_length, "stat-queue"),
        stat("Running", c.running, "stat-running"),
        stat("Nodes up", `${c.nodes.up} / ${c.nodes.total}`, "stat-nodes"),
      );
      gpus.replaceChildren(h("h2", {}, "GPUs"), gpuBars(c.gpus));
      const rows = jobs.jobs.map((j) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/jobs/${j.job_id}` }, j.job_id)),
          h("td", {}, j.name),
          h("td", {}, j.user),
          h("td", {}, stateBadge(j.state)),
          h("td", {}, j.nodes.join(", ")),
          h("td", {}, j.gpus),
          h("td", {}, fmtDuration(j.start_time_ms ? Date.now() - j.start_time_ms : 0)),
        ),
      );
      running.replaceChildren(
        h("h2", {}, "Running jobs"),
        rows.length
          ? h("table", {}, h("thead", {}, h("tr", {}, ["Job", "Name", "User", "State", "Nodes", "GPUs", "Running for"].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
          : h("p", { class: "muted" }, "Nothing running."),
      );
    } catch (e) {
      summary.replaceChildren(errorBox(e));
    }
  }
  await refresh();
  try {
    const recent = await get("/events/recent?limit=30");
    for (const e of recent.events.reverse()) events.append(eventLine(e.topic, e.data));
  } catch (e) {
    events.replaceChildren(errorBox(e));
  }
  const later = throttle(refresh, 700);
  return onEvent((topic, d) => {
    if (topic === "metric.batch") return;
    events.prepend(eventLine(topic, d));
    while (events.children.length > 50) events.lastChild.remove();
    later();
  });
}
