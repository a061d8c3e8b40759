// Shared set-up for the browser tests: launches Debian's Chromium through playwright-core,
// opens pages that record console errors and uncaught exceptions, and saves screenshots.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const BASE_URL = process.env.FAULTLINE_URL ?? "http://127.0.0.1:8080/";
const SCREENSHOTS = process.env.FAULTLINE_SCREENSHOTS ?? "../../target/e2e";
const CHROMIUM = process.env.FAULTLINE_CHROMIUM ?? "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
}

/** For each page opened here, the requests it has not finished. */
const unfinished = new WeakMap();

/** A page in a fresh context whose console errors and uncaught exceptions are collected. */
export async function openPage(browser, { colorScheme = "light", width = 1280, height = 860 } = {}) {
  const context = await browser.newContext({ colorScheme, viewport: { width, height } });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
  // Every request's state, so a page that never starts can say what it was still waiting for.
  const requests = new Map();
  page.on("request", (r) => requests.set(r.url(), "pending"));
  page.on("requestfinished", (r) => requests.set(r.url(), "done"));
  page.on("requestfailed", (r) => requests.set(r.url(), `failed (${r.failure()?.errorText})`));
  unfinished.set(page, () =>
    [...requests].filter(([, state]) => state !== "done").map(([url, state]) => `${url.split("/").pop() || "/"}: ${state}`));
  return { context, page, errors };
}

/** Goes to a route (the part after #) and waits until the app has replaced the loader: the
 * app's own readiness, not the page's load or DOMContentLoaded events, which a slow icon,
 * manifest or a fresh browser's first navigation on a busy machine can hold up (a suite's first
 * `goto` once waited 30 s for DOMContentLoaded with the server idle). */
export async function visit(page, route = "/") {
  await page.goto(`${BASE_URL}#${route}`, { waitUntil: "commit", timeout: 60000 });
  const started = () => page.waitForSelector(".shell, .crash", { timeout: 30000 }).then(() => true, () => false);
  if (await started()) return;
  // The suite's very first page used to stay on the loader now and then: two of its stylesheets
  // were never answered by the test server (fixed in xtask/src/server.rs). Should a page still
  // not start, say so with what it waits for, and load it once more. An app that cannot start
  // fails both times.
  const shown = async () => (await page.evaluate(() => document.body?.innerText ?? "").catch(() => "?")).slice(0, 300);
  const waiting = unfinished.get(page)?.().join(", ") || "none";
  console.log(`visit ${route}: the app had not started after 30 s (the page shows: ${await shown()}; requests not finished: ${waiting}); reloading once`);
  await page.reload({ waitUntil: "commit", timeout: 60000 });
  if (!(await started())) {
    throw new Error(`${route}: the app did not start, twice; the page shows: ${await shown()}`);
  }
}

/** Saves a screenshot of the whole page, or of the viewport only with `{ fullPage: false }`. */
export async function screenshot(page, name, { fullPage = true } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage });
}
