// The lab's Metrics view: RED panels drawn by plotters for a chosen service and instance,
// values on hover, and a latency point that opens its bucket's slowest trace.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Opens the metrics at 60 s of the default run (the lab seeks there and pauses). */
async function openMetrics(options) {
  const opened = await openPage(browser, options);
  await visit(opened.page, "/lab?t=60000&view=metrics");
  await opened.page.waitForSelector("#lab-play", { timeout: 30000 });
  await opened.page.waitForSelector("#chart-latency .chart-svg svg");
  return opened;
}

test("metrics draw a service's RED panels and show a bucket's values on hover", async () => {
  const { context, page, errors } = await openMetrics();
  const services = await page.$$eval("#metrics-service option", (os) => os.map((o) => o.value));
  assert.equal(services[0], "gateway");
  assert.ok(services.includes("payments"), services.join(","));
  await page.selectOption("#metrics-service", "payments");
  await page.waitForFunction(() => document.querySelector("#metrics-instance option:nth-child(2)")?.textContent.startsWith("payments-"));

  // Every panel is an SVG with drawn series and one hover column per one-second bucket.
  const panels = await page.$$eval(".chart-panel", (ps) => ps.map((p) => ({
    id: p.id,
    lines: p.querySelectorAll(".chart-svg svg polyline, .chart-svg svg path").length,
    texts: p.querySelectorAll(".chart-svg svg text").length,
    buckets: p.querySelectorAll(".chart-bucket").length,
  })));
  const ids = panels.map((p) => p.id);
  for (const id of ["chart-rate", "chart-errors", "chart-latency", "chart-saturation", "chart-retries"]) {
    assert.ok(ids.includes(id), `${id} in ${ids}`);
  }
  for (const p of panels) {
    assert.ok(p.texts > 4, `${p.id} has axis labels`);
    assert.ok(p.buckets >= 60 && p.buckets <= 62, `${p.id}: ${p.buckets} buckets`);
  }
  assert.ok(panels.find((p) => p.id === "chart-latency").lines >= 3, "p50, p95, p99 drawn");
  assert.ok(panels.find((p) => p.id === "chart-rate").lines >= 1, "the rate is drawn");

  // Hovering a bucket shows its values, and a crosshair on every panel.
  await page.hover("#chart-latency .chart-bucket[data-bucket='30']");
  const tip = page.locator("#chart-latency .chart-tooltip");
  await tip.waitFor();
  const text = await tip.textContent();
  assert.match(text, /^0:30/);
  assert.match(text, /p50.*p95.*p99/);
  assert.match(text, /\d+(\.\d)? ms|\d\.\d\d s/);
  assert.equal(await page.locator(".chart-crosshair").count(), panels.length);
  const title = await page.textContent("#chart-rate .chart-bucket[data-bucket='30'] title");
  assert.match(title, /^0:30 · requests \d+\.\d\/s$/);
  await screenshot(page, "lab-metrics");

  // One instance: its rate is part of the service's.
  const rate = async () => Number((await page.textContent("#chart-rate .chart-bucket[data-bucket='30'] title")).match(/requests ([\d.]+)/)[1]);
  const all = await rate();
  const second = await page.$eval("#metrics-instance option:nth-child(2)", (o) => o.value);
  await page.selectOption("#metrics-instance", second);
  await page.waitForFunction((all) => {
    const t = document.querySelector("#chart-rate .chart-bucket[data-bucket='30'] title")?.textContent ?? "";
    return Number(t.match(/requests ([\d.]+)/)?.[1]) < all;
  }, all);
  assert.ok((await rate()) > 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a latency point opens the bucket's slowest trace", async () => {
  const { context, page, errors } = await openMetrics();
  assert.equal(await page.getAttribute("#lab-tab-metrics", "aria-selected"), "true");
  await page.hover("#chart-latency .chart-bucket[data-bucket='40']");
  await page.click("#chart-latency .chart-bucket[data-bucket='40']");
  await page.waitForFunction(() => /[?&]trace=[0-9a-f]{32}/.test(location.hash), null, { timeout: 5000 });
  assert.match(page.url(), /view=traces/);
  await page.waitForSelector("#waterfall .span-row", { timeout: 10000 });
  assert.equal(await page.getAttribute("#lab-tab-traces", "aria-selected"), "true");
  await screenshot(page, "lab-metrics-exemplar");
  // Back returns to the metrics.
  await page.goBack();
  await page.waitForSelector("#chart-latency .chart-svg svg");
  assert.deepEqual(errors, []);
  await context.close();
});

test("the keyboard reads a panel bucket by bucket and opens a bucket's slowest trace", async () => {
  const { context, page, errors } = await openMetrics();
  await page.focus("#chart-latency .chart-body");
  assert.match(await page.getAttribute("#chart-latency .chart-body", "aria-label"), /arrows read the values, Enter opens/);
  await page.keyboard.press("Home");
  await page.waitForSelector("#chart-latency .chart-tooltip");
  assert.equal(await page.textContent("#chart-latency .chart-tooltip-time"), "0:00");
  for (let i = 0; i < 40; i++) await page.keyboard.press("ArrowRight");
  assert.equal(await page.textContent("#chart-latency .chart-tooltip-time"), "0:40");
  // The tooltip says what the bucket's hover title says: the same values.
  const title = await page.textContent("#chart-latency .chart-bucket[data-bucket='40'] title");
  const p99 = (await page.$$eval("#chart-latency .chart-tooltip-row", (rows) => rows.map((r) => r.textContent)))
    .find((r) => r.startsWith("p99"));
  assert.ok(title.includes(`p99 ${p99.slice(3)}`), `${title} / ${p99}`);
  await page.keyboard.press("Escape");
  await page.waitForSelector("#chart-latency .chart-tooltip", { state: "detached" });
  // End, then back to the bucket the mouse test opens, and Enter opens its slowest trace.
  await page.keyboard.press("End");
  const last = Number(await page.getAttribute("#chart-latency", "data-buckets")) - 1;
  for (let b = last; b > 40; b--) await page.keyboard.press("ArrowLeft");
  assert.equal(await page.textContent("#chart-latency .chart-tooltip-time"), "0:40");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /[?&]trace=[0-9a-f]{32}/.test(location.hash), null, { timeout: 5000 });
  assert.match(page.url(), /view=traces/);
  assert.deepEqual(errors, []);
  await context.close();
});

test("metrics read in the dark theme", async () => {
  const { context, page, errors } = await openMetrics({ colorScheme: "dark" });
  await page.selectOption("#metrics-service", "orders");
  await page.waitForFunction(() => document.querySelector("#metrics-instance option:nth-child(2)")?.textContent.startsWith("orders-"));
  await page.hover("#chart-rate .chart-bucket[data-bucket='45']");
  await page.locator("#chart-rate .chart-tooltip").waitFor();
  await screenshot(page, "lab-metrics-dark");
  assert.deepEqual(errors, []);
  await context.close();
});
