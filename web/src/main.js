// The dashboard's entry: a hash router (#/jobs/12) over five pages, one live
// event stream shared by all of them, and a banner for errors.
import "./style.css";
import { connectEvents, get, post } from "./api.js";
import { overview } from "./pages/overview.js";
import { jobsPage, jobPage } from "./pages/jobs.js";
import { experimentsPage, experimentPage } from "./pages/experiments.js";
import { accountsPage } from "./pages/accounts.js";
import { cloudPage } from "./pages/cloud.js";

const routes = [
  [/^\/?$/, overview, "overview"],
  [/^\/jobs\/?$/, jobsPage, "jobs"],
  [/^\/jobs\/(\d+)$/, jobPage, "jobs"],
  [/^\/experiments\/?$/, experimentsPage, "experiments"],
  [/^\/experiments\/(.+)$/, experimentPage, "experiments"],
  [/^\/accounts\/?$/, accountsPage, "accounts"],
  [/^\/cloud\/?$/, cloudPage, "cloud"],
];

let cleanup = null;

async function render() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const app = document.getElementById("app");
  if (cleanup) cleanup();
  cleanup = null;
  app.replaceChildren();
  for (const [re, page, nav] of routes) {
    const m = path.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
    const params = new URLSearchParams(query);
    cleanup = (await page(app, ...m.slice(1).map(decodeURIComponent), params)) || null;
    document.body.dataset.page = nav;
    return;
  }
  app.textContent = "No such page.";
}

// Who is logged in, and logging out (the session ends on the gateway too).
get("/session")
  .then((s) => {
    document.getElementById("who").textContent = s.user;
  })
  .catch(() => {});
document.getElementById("logout").addEventListener("click", () => {
  post("logout").finally(() => location.assign("login.html"));
});

connectEvents((live) => document.getElementById("live").classList.toggle("on", live));
window.addEventListener("hashchange", render);
render();
