// Accounts: spend per account with this month's budget bars, and usage and
// cost over time for each.
import { get } from "../api.js";
import { timeChart } from "../charts.js";
import { h, fmtMoney, fmtNum, errorBox } from "../dom.js";

function budgetBar(a, currency) {
  const b = a.budget;
  if (!b || !b.limit_micros) return h("span", { class: "muted" }, "no budget announced");
  const pct = Math.min(100, (100 * a.month_cost_micros) / b.limit_micros);
  const cls = b.blocked ? "over" : b.warning || pct >= 80 ? "warn" : "";
  return h(
    "div",
    { class: "budget" },
    h("div", { class: "bar" }, h("div", { class: `bar-fill ${cls}`, style: { width: `${pct}%` } })),
    h("span", {}, `${fmtMoney(a.month_cost, "")} of ${fmtMoney(b.limit_micros / 1e6, currency)}${b.blocked ? " — blocked" : ""}`),
  );
}

export async function accountsPage(app) {
  const table = h("section", { class: "panel" }, h("h2", {}, "Spend"));
  const charts = h("section", { class: "panel" }, h("h2", {}, "Cost per day"));
  app.append(h("h1", {}, "Accounts"), table, charts);
  let r;
  try {
    r = await get("/accounts");
  } catch (e) {
    table.replaceChildren(errorBox(e));
    return;
  }
  table.replaceChildren(
    h("h2", {}, `Spend (${r.currency || "?"}), this month ${r.month}`),
    r.accounts.length
      ? h(
          "table",
          { class: "accounts" },
          h("thead", {}, h("tr", {}, ["Account", "GPU hours", "Total cost", "This month", "Budget"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            r.accounts.map((a) =>
              h(
                "tr",
                { "data-account": a.account },
                h("td", {}, a.account),
                h("td", { class: "num" }, fmtNum(a.gpu_hours, 3)),
                h("td", { class: "num" }, fmtMoney(a.cost, r.currency)),
                h("td", { class: "num" }, fmtMoney(a.month_cost, r.currency)),
                h("td", {}, budgetBar(a, r.currency)),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No usage recorded yet."),
  );
  const grid = h("div", { class: "chart-grid" });
  charts.append(grid);
  for (const a of r.accounts.slice(0, 8)) {
    try {
      const u = await get(`/usage?account=${encodeURIComponent(a.account)}&group_by=day`);
      const pts = u.rows
        .map((row) => ({ t: Date.parse(row.key), v: row.cost }))
        .filter((p) => !Number.isNaN(p.t))
        .sort((x, y) => x.t - y.t);
      // A first day alone draws no line: start from nothing the day before.
      if (pts.length === 1) pts.unshift({ t: pts[0].t - 86400000, v: 0 });
      const box = h("div", { class: "chart", "data-account": a.account });
      grid.append(box);
      if (pts.length) timeChart(box, `${a.account}: cost per day (${u.currency})`, "cost", pts);
      else box.append(h("p", { class: "muted" }, `${a.account}: no daily usage yet`));
    } catch (e) {
      grid.append(errorBox(e));
    }
  }
}
