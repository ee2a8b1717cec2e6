// Cloud: the rented pools (nodes ready/live/max, price, paused or backing
// off), every rented node's lease with its lifecycle state and why, and the
// jobs a budget kept from renting. Refreshed every few seconds and on node
// events (a rented node registering, draining, going).
import { get, onEvent, throttle } from "../api.js";
import { h, fmtTime, fmtMoney, errorBox } from "../dom.js";

const STATES = ["Requested", "Provisioning", "Registering", "Ready", "Draining", "Releasing", "Released", "Failed"];

function poolsTable(r) {
  if (!r.pools.length) return h("p", { class: "muted" }, "No cloud pool is configured ([pools.<name>], docs/cloud.md).");
  return h(
    "table",
    { class: "pools" },
    h("thead", {}, h("tr", {}, ["Pool", "GPUs per node", "Ready / live / max", "Price per node-hour", "State"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      r.pools.map((p) =>
        h(
          "tr",
          { "data-pool": p.name },
          h("td", {}, p.name),
          h("td", {}, `${p.gpus_per_node} × ${p.gpu_type}`),
          h("td", { class: "num" }, `${p.ready_nodes} / ${p.live_nodes} / ${p.max_nodes}`),
          h(
            "td",
            { class: "num" },
            fmtMoney(p.price_micros_per_hour / 1e6, ""),
            p.spot_price_micros_per_hour ? ` (spot ${fmtMoney(p.spot_price_micros_per_hour / 1e6, "")})` : "",
          ),
          h("td", {}, p.paused ? `paused: ${p.pause_reason}` : "active"),
        ),
      ),
    ),
  );
}

function leasesTable(r) {
  if (!r.leases.length) return h("p", { class: "muted" }, "No cloud node is rented.");
  const rows = [...r.leases].sort((a, b) => b.lease_id - a.lease_id);
  return h(
    "table",
    { class: "leases" },
    h("thead", {}, h("tr", {}, ["Lease", "Pool", "Node", "State", "Offer", "For job", "Rented at", "Why"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      rows.map((l) =>
        h(
          "tr",
          { "data-lease": l.lease_id, "data-state": l.state },
          h("td", {}, l.lease_id),
          h("td", {}, l.pool),
          h("td", {}, l.node),
          h("td", {}, h("span", { class: `state state-${STATES.includes(l.state) ? l.state.toLowerCase() : "unknown"}` }, l.state)),
          h("td", {}, `${l.spot ? "spot" : "on-demand"} ${fmtMoney(l.price_micros_per_hour / 1e6, "")}/h`),
          h("td", {}, l.for_job ? h("a", { href: `#/jobs/${l.for_job}` }, l.for_job) : "—"),
          h("td", {}, fmtTime(l.requested_ns / 1e6)),
          h("td", {}, l.reason),
        ),
      ),
    ),
  );
}

export async function cloudPage(app) {
  const head = h("p", { class: "muted" });
  const pools = h("section", { class: "panel" }, h("h2", {}, "Pools"));
  const leases = h("section", { class: "panel" }, h("h2", {}, "Rented nodes"));
  const refused = h("section", { class: "panel refused" });
  app.append(h("h1", {}, "Cloud"), head, pools, leases, refused);
  const load = async () => {
    try {
      const r = await get("/cloud?ended=1");
      head.textContent = r.paused ? `Every pool is paused: ${r.pause_reason}` : "";
      pools.replaceChildren(h("h2", {}, "Pools"), poolsTable(r));
      leases.replaceChildren(h("h2", {}, "Rented nodes"), leasesTable(r));
      refused.replaceChildren(
        ...(r.refused.length
          ? [h("h2", {}, "Not rented (budget)"), h("ul", {}, r.refused.map((x) => h("li", {}, `job ${x.job_id}: ${x.reason}`)))]
          : []),
      );
    } catch (e) {
      pools.replaceChildren(h("h2", {}, "Pools"), errorBox(e));
    }
  };
  await load();
  const timer = setInterval(load, 3000);
  const refresh = throttle(load, 500);
  const off = onEvent((topic) => {
    if (topic.startsWith("node.") || topic.startsWith("lease.")) refresh();
  });
  return () => {
    clearInterval(timer);
    off();
  };
}
