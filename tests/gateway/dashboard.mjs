// Drives the dashboard in Debian's headless Chromium with playwright-core
// (from <build>/web/node_modules, found through TY_WEB_DIR) against a live gateway, checks what a user sees on
// each page, and saves a screenshot of each page.
//
//   TY_USER=ana TY_TOKEN=tyt_... node dashboard.mjs URL OUT_DIR JOB_ID EXPERIMENT BEST_JOB_ID
// It logs in through the real login page first (the dashboard is behind it).
// Exits non-zero with the reason on the first failed check or console error.
import { createRequire } from "node:module";
import path from "node:path";

const [url, out, jobId, experiment, bestJob] = process.argv.slice(2);
const webDir = process.env.TY_WEB_DIR || path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../web");
const { chromium } = createRequire(path.join(webDir, "package.json"))("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const problems = [];
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // Until logout: the requests in flight then may fail with 401, as they should.
  let watching = true;
  page.on("console", (m) => watching && m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.setDefaultTimeout(20000);
  const shot = (name) => page.screenshot({ path: path.join(out, name), fullPage: true });
  const check = (cond, what) => {
    if (!cond) throw new Error(`check failed: ${what}`);
    console.log(`ok: ${what}`);
  };

  // Not logged in: the dashboard sends the browser to the login page; a
  // wrong token is refused there; the user's token logs in.
  await page.goto(`${url}/`);
  await page.waitForURL(/login\.html/);
  check(true, "the dashboard asks an anonymous browser to log in");
  await page.fill("#user", process.env.TY_USER);
  await page.fill("#token", "tyt_wrong");
  await page.click("button[type=submit]");
  await page.waitForURL(/login\.html\?error=/);
  check(await page.locator("#error").isVisible(), "a wrong token is refused with a message");
  await page.fill("#user", process.env.TY_USER);
  await page.fill("#token", process.env.TY_TOKEN);
  await shot("login.png");
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.endsWith("login.html"));
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "ty_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly, SameSite=Strict");
  await page.locator("#who").filter({ hasText: process.env.TY_USER }).waitFor();
  check(true, `the header shows ${process.env.TY_USER} logged in`);

  // Overview: the agent's two A100s, idle now.
  await page.goto(`${url}/#/`);
  const gpuRow = page.locator('.gpu-row[data-gpu-type="A100"]');
  await gpuRow.waitFor();
  check((await gpuRow.textContent()).includes("2 total"), "overview shows 2 A100 GPUs");
  check((await page.locator("#stat-gpus").textContent()).includes("/ 2"), "overview counts GPUs busy of total");
  await page.locator(".events li").first().waitFor();
  check((await page.locator(".events li").count()) > 0, "overview lists recent events");
  await page.waitForFunction(() => document.getElementById("live").classList.contains("on"));
  check(true, "live event stream connected");
  await shot("overview.png");

  // Jobs table with a filter.
  await page.goto(`${url}/#/jobs?experiment=${encodeURIComponent(experiment)}`);
  await page.locator(`tr[data-job="${jobId}"]`).waitFor();
  check((await page.locator("table.jobs tbody tr").count()) >= 3, "jobs table lists the experiment's runs");
  await shot("jobs.png");

  // A job page: timeline, log, and a chart drawn from the job's points.
  await page.goto(`${url}/#/jobs/${jobId}`);
  const chart = page.locator('.chart[data-metric="loss"]');
  await chart.waitFor();
  const points = Number(await chart.getAttribute("data-points"));
  check(points > 10, `job ${jobId} loss chart has ${points} points`);
  await chart.locator("canvas").waitFor();
  check((await page.locator(".timeline .seg").count()) >= 3, "job page shows a state timeline");
  await page.waitForFunction(() => document.querySelector("pre.log")?.textContent.includes("job="));
  check(true, "job page shows the log tail");
  await shot("job.png");

  // The experiment: runs ranked best first, the best highlighted, curves overlaid.
  await page.goto(`${url}/#/experiments/${encodeURIComponent(experiment)}?metric=loss`);
  const first = page.locator("table.ranking tbody tr").first();
  await first.waitFor();
  check((await page.locator("table.ranking tbody tr").count()) === 3, "experiment ranks 3 runs");
  check((await first.getAttribute("data-job")) === bestJob, `best run ${bestJob} is first`);
  check((await first.getAttribute("class")).includes("best"), "best run is highlighted");
  await page.locator(".chart[data-runs] canvas").waitFor();
  check(Number(await page.locator(".chart[data-runs]").getAttribute("data-runs")) === 3, "3 curves overlaid");
  await shot("experiment.png");

  // Accounts: spend and a cost chart.
  await page.goto(`${url}/#/accounts`);
  await page.locator('tr[data-account="vision"]').waitFor();
  check(true, "accounts page lists the vision account");
  await page.waitForTimeout(300);
  await shot("accounts.png");

  // Cloud: the pools (none configured here) and the rented nodes.
  await page.goto(`${url}/#/cloud`);
  await page.locator("h1", { hasText: "Cloud" }).waitFor();
  await page.waitForFunction(() => document.querySelector("section.panel p.muted")?.textContent.includes("No cloud pool"));
  check(true, "cloud page says no pool is configured");
  await shot("cloud.png");

  // Logging out ends the session: the next visit is the login page again.
  watching = false;
  await page.click("#logout");
  await page.waitForURL(/login\.html/);
  await page.goto(`${url}/`);
  await page.waitForURL(/login\.html/);
  check(true, "after logout the dashboard asks to log in again");
} catch (e) {
  failed = true;
  console.error(e.message);
} finally {
  await browser.close();
}
for (const p of problems) console.error(p);
process.exit(failed || problems.length ? 1 : 0);
