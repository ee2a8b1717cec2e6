// Talks to the gateway's REST API (same origin) and its live event stream.
// Every failure becomes an ApiError carrying the gateway's JSON error body,
// so pages can say which service is down.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// The session's CSRF token, which the gateway set in the readable ty_csrf
// cookie at login; every state-changing request carries it in X-CSRF-Token.
export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)ty_csrf=([^;]*)/);
  return m ? m[1] : "";
}

// No session (never logged in, expired, logged out): the login page.
function toLogin() {
  location.assign("login.html");
}

export async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body ?? {}),
  });
  if (res.status === 401) toLogin();
  const out = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, out);
  return out;
}

export async function get(path) {
  const res = await fetch(`api/v1${path}`, { headers: { Accept: "application/json" } });
  if (res.status === 401) toLogin();
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// One EventSource for the whole page; pages add listeners by event kind.
const listeners = new Set();
let source = null;

export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function connectEvents(setLive) {
  if (source) return;
  source = new EventSource("api/v1/events?kinds=job,node,lease,run,account,metric");
  source.onopen = () => setLive(true);
  source.onerror = () => setLive(false); // EventSource reconnects by itself
  const dispatch = (msg) => {
    let data;
    try {
      data = JSON.parse(msg.data);
    } catch {
      return;
    }
    for (const fn of listeners) fn(msg.type, data);
  };
  for (const t of [
    "job.submitted", "job.state", "node.up", "node.down", "node.drain", "run.started", "run.finished",
    "account.warning", "account.blocked", "metric.batch", "lease.granted", "lease.released", "lease.revoked",
    "lease.lost",
  ]) {
    source.addEventListener(t, dispatch);
  }
}

// Calls fn at most once per `ms`, trailing.
export function throttle(fn, ms) {
  let timer = null;
  return (...args) => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
}
