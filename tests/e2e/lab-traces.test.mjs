// The lab's Traces view: search a paused run with a minimum duration, open a trace, read its
// critical path and a span's detail, fold a subtree, close with Esc; an incomplete trace's
// warnings; and scroll a 5,000-span trace, printing the frame times.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const hashParams = (page) => new URL(page.url().replace("#/lab", "")).searchParams;

/** Opens the lab at 60 s on the Traces tab and waits until the run has paused there. */
async function openAt60s(page) {
  await visit(page, "/lab?t=60000&view=traces");
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  await page.waitForSelector("#trace-results");
}

test("search with a minimum duration, open a trace, read its critical path and a span", async () => {
  const { context, page, errors } = await openPage(browser);
  await openAt60s(page);
  assert.equal(await page.textContent("#lab-clock"), "1:00.0");
  assert.equal(await page.getAttribute("#lab-tab-traces", "aria-selected"), "true");

  // The tabs answer the arrow keys, and the view goes into the URL.
  await page.focus("#lab-tab-traces");
  await page.keyboard.press("ArrowLeft");
  await page.waitForSelector(".service-map");
  assert.equal(await page.getAttribute("#lab-tab-map", "aria-selected"), "true");
  assert.equal(hashParams(page).get("view"), "map");
  await page.keyboard.press("ArrowRight");
  await page.waitForSelector("#trace-results");
  assert.equal(hashParams(page).get("view"), "traces");

  // The newest 100 traces, to pick a minimum that some but not all of them pass.
  await page.fill("#search-limit", "100");
  await page.click("#search-submit");
  await page.waitForFunction(() => document.querySelectorAll("#trace-results > li").length === 100);
  const all = await page.$$eval("#trace-results > li", (lis) => lis.map((li) => Number(li.dataset.durationUs)));
  const sorted = [...all].sort((a, b) => a - b);
  const minMs = Math.max(1, Math.round(sorted[Math.floor(sorted.length * 0.8)] / 1000));

  // A duration without a unit is refused at its field.
  await page.fill("#search-min", "12");
  await page.press("#search-min", "Tab");
  await page.waitForSelector("#search-min-error");
  assert.match(await page.textContent("#search-min-error"), /no unit/);
  assert.ok(await page.isDisabled("#search-submit"));

  await page.fill("#search-min", `${minMs}ms`);
  await page.press("#search-min", "Tab");
  await page.waitForSelector("#search-min-error", { state: "detached" });
  await page.click("#search-submit");
  await page.waitForFunction((min) => new URL(location.href.replace("#/lab", "")).searchParams.get("min") === min, `${minMs}ms`);
  await page.waitForFunction((min) => [...document.querySelectorAll("#trace-results > li")]
    .every((li) => Number(li.dataset.durationUs) >= min), minMs * 1000);
  const durations = await page.$$eval("#trace-results > li", (lis) => lis.map((li) => Number(li.dataset.durationUs)));
  assert.ok(durations.length > 0, "some traces are that slow");
  for (const d of durations) assert.ok(d >= minMs * 1000, `${d} µs >= ${minMs} ms`);
  assert.equal(await page.$$eval("#trace-scatter circle", (c) => c.length), durations.length);
  await screenshot(page, "lab-traces-search", { fullPage: false });

  // Longest first, as Jaeger sorts; then open the slowest: the trace page, with the trace in
  // the URL.
  await page.selectOption("#results-sort", "longest");
  await page.waitForFunction(() => new URL(location.href.replace("#/lab", "")).searchParams.get("sort") === "longest");
  const byLength = await page.$$eval("#trace-results > li", (lis) => lis.map((li) => Number(li.dataset.durationUs)));
  assert.deepEqual(byLength, [...durations].sort((a, b) => b - a));
  await page.click("#trace-results > li:first-child .trace-result-title");
  await page.waitForSelector("#waterfall .span-row");
  assert.match(hashParams(page).get("trace"), /^[0-9a-f]{32}$/);
  const total = Number((await page.textContent("#trace-span-count")).replaceAll(",", ""));
  const rows = await page.$$eval("#waterfall .span-row", (r) => r.length);
  assert.equal(rows, Math.min(total, rows), "rows shown");
  // The critical path: marks on the bars, the root's among them.
  assert.ok(await page.$$eval(".span-critical", (m) => m.length) > 0, "critical path drawn");
  assert.ok(await page.$eval("#waterfall .span-row", (r) => r.classList.contains("critical")), "root is critical");

  // The statistics table: one row per service and operation, their spans adding up.
  await page.click("#show-statistics");
  await page.waitForSelector("#trace-statistics");
  const counts = await page.$$eval("#trace-statistics tbody tr", (rows) => rows.map((r) => Number(r.cells[2].textContent)));
  assert.equal(counts.reduce((a, b) => a + b, 0), total);
  await screenshot(page, "lab-traces-statistics", { fullPage: false });

  // Compare with another trace of the same route: every path of either, on both sides.
  await page.click("#show-compare");
  await page.waitForSelector("#compare-pick .compare-choice");
  await page.click("#compare-pick li:first-child .compare-choice");
  await page.waitForSelector("#trace-compare");
  assert.match(hashParams(page).get("compare"), /^[0-9a-f]{32}$/);
  const compared = await page.$$eval("#trace-compare tbody tr", (rows) => rows.map((r) => r.cells[1].textContent));
  assert.ok(compared.length >= counts.length, "the first trace's paths, at least");
  await screenshot(page, "lab-traces-compare", { fullPage: false });

  await page.click("#show-timeline");
  await page.waitForSelector("#waterfall .span-row");

  // A span's detail: its attributes.
  await page.click("#waterfall .span-row:nth-child(2)");
  await page.waitForSelector("#span-detail");
  const attributes = await page.$$eval("#span-attributes tr", (r) => r.map((x) => x.textContent));
  assert.ok(attributes.length > 0, "attributes shown");
  assert.ok(await page.$eval("#waterfall .span-row:nth-child(2)", (r) => r.classList.contains("selected")));
  await screenshot(page, "lab-traces-trace");

  // j moves the selection down, and the detail follows it.
  const before = await page.textContent("#span-detail h3");
  await page.keyboard.press("j");
  await page.waitForFunction(() => document.querySelector("#waterfall .span-row:nth-child(3)")?.classList.contains("selected"));
  assert.ok(before.length > 0);

  // Fold a subtree: the root's, then unfold it.
  const shown = await page.$$eval("#waterfall .span-row", (r) => r.length);
  if (shown > 1) {
    await page.click("#waterfall .span-row:nth-child(1) .span-toggle");
    await page.waitForFunction(() => document.querySelectorAll("#waterfall .span-row").length === 1);
    assert.equal(await page.getAttribute("#waterfall .span-row .span-toggle", "aria-expanded"), "false");
    await page.click("#expand-all");
    await page.waitForFunction((n) => document.querySelectorAll("#waterfall .span-row").length === n, shown);
  }

  // Esc closes the detail, then the trace.
  await page.keyboard.press("Escape");
  await page.waitForSelector("#span-detail", { state: "detached" });
  await page.keyboard.press("Escape");
  await page.waitForSelector("#trace-results");
  assert.equal(hashParams(page).get("trace"), null);
  assert.equal(hashParams(page).get("min"), `${minMs}ms`, "the search is kept");

  // From the list by keyboard: j selects the first, Enter opens it.
  await page.keyboard.press("j");
  await page.waitForSelector("#trace-results > li.selected");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#waterfall .span-row");
  assert.deepEqual(errors, []);
  await context.close();
});

test("the trace page in the dark theme, reloaded from its URL", async () => {
  const { context, page, errors } = await openPage(browser, { colorScheme: "dark" });
  await openAt60s(page);
  await page.fill("#search-min", "100ms");
  await page.fill("#search-limit", "50");
  await page.press("#search-limit", "Tab");
  await page.selectOption("#search-lookback", "10s");
  await page.click("#search-submit");
  await page.waitForFunction(() => new URL(location.href.replace("#/lab", "")).searchParams.get("limit") === "50");
  // The last ten seconds of the run: every trace started at 0:50 or later.
  const starts = await page.$$eval("#trace-results .result-start", (s) => s.map((x) => x.textContent));
  assert.ok(starts.length > 0);
  for (const start of starts) {
    const [m, sec] = start.split(":");
    assert.ok(Number(m) * 60 + Number(sec) >= 50, start);
  }
  const durations = await page.$$eval("#trace-results > li", (lis) => lis.map((li) => Number(li.dataset.durationUs)));
  const slowest = durations.indexOf(Math.max(...durations));
  await page.click(`#trace-results > li:nth-child(${slowest + 1}) .trace-result-title`);
  await page.waitForSelector("#waterfall .span-row");
  const url = page.url();
  await page.reload();
  await page.waitForSelector("#waterfall .span-row", { timeout: 30000 });
  assert.equal(page.url(), url);
  await page.click("#waterfall .span-row:nth-child(3)");
  await page.waitForSelector("#span-detail");
  await screenshot(page, "lab-traces-dark");
  assert.deepEqual(errors, []);
  await context.close();
});

test("a from/to range on the run's clock narrows the search, refuses bad input, and survives a reload", async () => {
  const { context, page, errors } = await openPage(browser);
  await openAt60s(page);
  const seconds = (start) => { const [m, s] = start.split(":"); return Number(m) * 60 + Number(s); };

  // Seconds past 59 are refused at From; a lookback with a range at Lookback.
  await page.fill("#search-from", "0:75");
  await page.press("#search-from", "Tab");
  await page.waitForSelector("#search-from-error");
  assert.match(await page.textContent("#search-from-error"), /the seconds after `:` go from 00 to 59/);
  assert.ok(await page.isDisabled("#search-submit"));
  await page.fill("#search-from", "0:20");
  await page.press("#search-from", "Tab");
  await page.waitForSelector("#search-from-error", { state: "detached" });
  await page.selectOption("#search-lookback", "10s");
  await page.waitForSelector("#search-lookback-error");
  assert.match(await page.textContent("#search-lookback-error"), /do not mix/);
  assert.ok(await page.isDisabled("#search-submit"));
  await page.selectOption("#search-lookback", "");
  await page.waitForSelector("#search-lookback-error", { state: "detached" });

  await page.fill("#search-to", "30s");
  await page.fill("#search-limit", "200");
  await page.press("#search-limit", "Tab");
  await page.click("#search-submit");
  await page.waitForFunction(() => {
    const p = new URL(location.href.replace("#/lab", "")).searchParams;
    return p.get("from") === "0:20" && p.get("to") === "30s";
  });
  await page.waitForFunction(() => [...document.querySelectorAll("#trace-results .result-start")]
    .every((s) => { const [m, sec] = s.textContent.split(":"); const t = Number(m) * 60 + Number(sec); return t >= 20 && t < 30; }));
  const starts = await page.$$eval("#trace-results .result-start", (s) => s.map((x) => x.textContent));
  assert.ok(starts.length > 50, `traces that start in 0:20 to 0:30: ${starts.length}`);
  for (const start of starts) assert.ok(seconds(start) >= 20 && seconds(start) < 30, start);
  const ids = await page.$$eval("#trace-results > li", (lis) => lis.map((li) => li.dataset.traceId));
  await screenshot(page, "lab-traces-range", { fullPage: false });

  // A reload searches the same range again.
  const url = page.url();
  await page.reload();
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  await page.waitForSelector("#trace-results > li");
  assert.equal(page.url(), url);
  assert.equal(await page.inputValue("#search-from"), "0:20");
  assert.equal(await page.inputValue("#search-to"), "30s");
  assert.deepEqual(await page.$$eval("#trace-results > li", (lis) => lis.map((li) => li.dataset.traceId)), ids);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a 5,000-span trace renders a window of rows and scrolls smoothly", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/lab?scenario=debug-wide-trace&view=traces");
  await page.waitForSelector("#trace-results > li");

  // The fixture's small broken trace first: incomplete, with its warnings listed.
  await page.click('#trace-results > li[data-trace-id="0af7651916cd43dd8448eb211c80319c"] .trace-result-title');
  await page.waitForSelector("#trace-incomplete");
  const warnings = await page.$$eval("#trace-warnings li", (l) => l.map((x) => x.textContent));
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.ok(warnings.some((w) => w.startsWith("orphan")) && warnings.some((w) => w.startsWith("clock skew")));
  assert.equal(await page.$$eval(".span-orphan", (o) => o.length), 1);
  await screenshot(page, "lab-traces-incomplete", { fullPage: false });
  await page.keyboard.press("Escape");

  await page.click('#trace-results > li[data-trace-id="4bf92f3577b34da6a3ce929d0e0e4736"] .trace-result-title');
  await page.waitForSelector("#waterfall .span-row");
  assert.equal(await page.textContent("#trace-span-count"), "5,000");
  const rendered = await page.$$eval("#waterfall .span-row", (r) => r.length);
  assert.ok(rendered < 80, `only a window is rendered: ${rendered} rows`);

  // Time 150 animation frames idle, then 150 frames each scrolling 400 px (15 rows, a new
  // window every frame): the difference is what scrolling costs.
  const frameTimes = (px) => page.evaluate(async (px) => {
    const list = document.querySelector("#waterfall .virtual-list");
    const frames = [];
    let last = performance.now();
    for (let i = 0; i < 150; i++) {
      list.scrollTop += px;
      await new Promise((resolve) => requestAnimationFrame(resolve));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    frames.sort((a, b) => a - b);
    const pick = (q) => frames[Math.min(frames.length - 1, Math.floor(frames.length * q))];
    return { median: pick(0.5), p95: pick(0.95), max: frames[frames.length - 1] };
  }, px);
  const show = (t) => `median ${t.median.toFixed(1)} ms, p95 ${t.p95.toFixed(1)} ms, max ${t.max.toFixed(1)} ms`;
  const idle = await frameTimes(0);
  const timing = await frameTimes(400);
  // The work of one scroll step alone: the handler and the render of the new window (the
  // app renders in microtasks after the event), then layout, forced by reading a row's box.
  const work = await page.evaluate(async () => {
    const list = document.querySelector("#waterfall .virtual-list");
    list.scrollTop = 0;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const render = [], layout = [];
    let moved = 0;
    for (let i = 0; i < 100; i++) {
      const first = list.querySelector(".span-row").dataset.spanId;
      const start = performance.now();
      list.scrollTop += 400;
      list.dispatchEvent(new Event("scroll"));
      for (let k = 0; k < 8; k++) await Promise.resolve();
      const rendered = performance.now();
      void list.querySelector(".span-row:last-child").getBoundingClientRect();
      layout.push(performance.now() - rendered);
      render.push(rendered - start);
      if (list.querySelector(".span-row").dataset.spanId !== first) moved++;
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
    const stats = (xs) => { xs.sort((a, b) => a - b); return { median: xs[50], p95: xs[95], max: xs[99] }; };
    return { render: stats(render), layout: stats(layout), moved };
  });
  assert.ok(work.moved >= 95, `each step rendered a new window: ${work.moved}`);
  console.log(`5,000-span trace, frame times idle: ${show(idle)}; scrolling 400 px a frame: ${show(timing)}; one step's render ${show(work.render)}, its layout ${show(work.layout)}`);
  assert.ok(timing.p95 < 100, `frames stay short: ${JSON.stringify(timing)}`);
  // At the bottom the last row in tree order is there: span 4,681 (0x1249), the last leaf
  // under the root's eighth child.
  await page.$eval("#waterfall .virtual-list", (l) => { l.scrollTop = l.scrollHeight; });
  await page.waitForSelector('#waterfall .span-row[data-span-id="0000000000001249"]');
  // Error marks, and an error span's detail.
  await page.$eval("#waterfall .virtual-list", (l) => { l.scrollTop = 0; });
  await page.waitForSelector("#waterfall .span-row.error .span-error-mark");
  await page.click("#waterfall .span-row.error");
  await page.waitForSelector("#span-detail");
  assert.equal(await page.textContent("#span-status"), "error");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#span-detail", { state: "detached" });
  await page.click("#collapse-all");
  await page.waitForFunction(() => document.querySelectorAll("#waterfall .span-row").length === 1);
  await page.click("#expand-all");
  await page.waitForFunction(() => document.querySelectorAll("#waterfall .span-row").length > 20);
  await screenshot(page, "lab-traces-wide");
  assert.deepEqual(errors, []);
  await context.close();
});

test("while the run plays, the results refresh a few times a second, not every frame", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/lab?view=traces&speed=10");
  await page.waitForSelector("#lab-pause");
  await page.waitForSelector("#trace-results > li");
  // Count the refreshes over two seconds: each one changes the newest trace at the top.
  const seen = await page.evaluate(async () => {
    const ids = [];
    const until = performance.now() + 2000;
    while (performance.now() < until) {
      const id = document.querySelector("#trace-results > li")?.dataset.traceId;
      if (id && ids[ids.length - 1] !== id) ids.push(id);
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
    return ids.length;
  });
  assert.ok(seen >= 2 && seen <= 10, `the list changed ${seen} times in 2 s`);
  await page.click("#lab-pause");
  assert.deepEqual(errors, []);
  await context.close();
});

test("a Jaeger file from a real system opens in the trace views, its repairs and orphans shown", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/lab?t=1000");
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  const fixtures = new URL("../../../shared/fixtures/traces/", import.meta.url).pathname;
  await page.setInputFiles("#import-file", `${fixtures}jaeger-multiple-orphans.json`);
  await page.waitForSelector("#import-summary");
  const params = hashParams(page);
  assert.equal(params.get("scenario"), "imported");
  assert.equal(params.get("view"), "traces");
  assert.match(await page.textContent("#import-summary"), /jaeger-multiple-orphans\.json read as Jaeger JSON: \d+ traces?, \d+ spans/);
  await page.waitForSelector("#trace-results > li");
  await page.click("#trace-results > li:first-child .trace-result-title");
  await page.waitForSelector("#trace-incomplete");
  assert.match(await page.textContent("#trace-warnings"), /orphan/);
  await screenshot(page, "lab-import");

  // A file that is not a trace says so, names the file, and leaves the lab as it was.
  await page.setInputFiles("#import-file", { name: "notes.json", mimeType: "application/json", buffer: Buffer.from("{ not json") });
  await page.waitForSelector("#import-error");
  assert.match(await page.textContent("#import-error"), /^notes\.json: not JSON/);
  assert.ok(await page.$("#trace-incomplete"));

  // The file is kept in this tab: a reload opens it again, on the same trace.
  const trace = hashParams(page).get("trace");
  assert.ok(trace, "the open trace is in the URL");
  await page.reload({ waitUntil: "commit" });
  await page.waitForSelector("#trace-incomplete", { timeout: 30000 });
  assert.equal(hashParams(page).get("trace"), trace);
  await page.click("text=← Search");
  await page.waitForSelector("#import-summary");
  assert.match(await page.textContent("#import-summary"),
    /jaeger-multiple-orphans\.json read as Jaeger JSON: \d+ traces?, \d+ spans.* Kept in this tab for a reload\./);
  assert.deepEqual(errors, []);
  await context.close();
});
