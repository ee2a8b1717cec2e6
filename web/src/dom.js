// Tiny DOM helpers: h() builds elements, fmt* format numbers and times.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fmtTime(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString();
}

export function fmtDuration(ms) {
  if (!ms || ms < 0) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function fmtNum(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (Math.abs(v) >= 1000 || Number.isInteger(v)) return v.toLocaleString();
  return Number(v.toPrecision(digits)).toString();
}

export function fmtMoney(v, currency) {
  if (v === null || v === undefined) return "—";
  // Small sums (a test run costs a fraction of a cent) keep 3 significant digits.
  const text = v !== 0 && Math.abs(v) < 1 ? Number(v.toPrecision(3)).toString() : v.toFixed(2);
  return `${text}${currency ? " " + currency : ""}`;
}

export function stateBadge(state) {
  return h("span", { class: `state state-${String(state).toLowerCase()}` }, state);
}

export function errorBox(err) {
  const svc = err?.body?.service ? ` (${err.body.service})` : "";
  return h("div", { class: "error" }, `${err.message}${svc}`);
}
