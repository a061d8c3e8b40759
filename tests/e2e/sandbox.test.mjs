// The sandbox: two setups of the default mesh run side by side and compared. B retries charges
// without their idempotency key and charges twice; the figures on screen are the engine's, the
// lab opened on B agrees, a reload recomputes the same comparison, and the page never freezes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const number = (text) => Number(text.replaceAll(",", ""));

/** Types into a text field and leaves it, as a learner does (the form reads on change). */
async function type(page, selector, text) {
  await page.fill(selector, text);
  await page.press(selector, "Tab");
}

/** A run's figures as the page wrote them from the engine's RunSummary. */
async function figures(page, side) {
  return page.$eval(`#result-${side}`, (dl) => ({ ...dl.dataset }));
}

/** Records the longest gap between animation frames from now on. */
async function watchFrames(page) {
  await page.evaluate(() => {
    window.__gaps = { max: 0, last: performance.now(), on: true };
    const tick = (t) => {
      const g = window.__gaps;
      g.max = Math.max(g.max, t - g.last);
      g.last = t;
      if (g.on) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
const longestFrame = (page) => page.evaluate(() => { window.__gaps.on = false; return window.__gaps.max; });

test("B with a non-idempotent retry charges twice where A does not; the figures are the engine's", async () => {
  const { context, page, errors } = await openPage(browser, { width: 1440, height: 900 });
  await visit(page, "/sandbox");
  await page.waitForSelector("#run-both");
  assert.match(await page.textContent("#versus-title + *"), /Run both to compare/);

  // Validation: text that does not read, then a rate the engine refuses, each beside its field.
  await type(page, "#a-rate_per_s", "fast");
  assert.match(await page.textContent("#a-rate_per_s-error"), /`fast` is not a number/);
  assert.ok(await page.isDisabled("#run-a-start"), "a setup with a problem does not run");
  await type(page, "#a-rate_per_s", "5000");
  assert.match(await page.textContent("#a-rate_per_s-error"), /at most 200 requests\/s/);
  assert.match(await page.textContent("#problems-a"), /rate_per_s: must be/);
  await type(page, "#a-rate_per_s", "50");
  assert.equal(await page.$("#a-rate_per_s-error"), null);

  // A: one minute with payments slowed, so charges time out after they went through.
  await page.selectOption("#a-duration_ms", "60000");
  await page.selectOption("#a-fault-kind", "latency");
  await page.selectOption("#a-fault-target", "payments");
  await page.click("#a-fault-add");
  await type(page, "#a-faults-0-effect-extra_ms", "900");
  // A window that ends before it starts is named at its field.
  await type(page, "#a-faults-0-until_ms", "5");
  assert.match(await page.textContent("#a-faults-0-until_ms-error"), /after from_ms/);
  await type(page, "#a-faults-0-until_ms", "60");
  // B: the same, plus orders retrying charges without the idempotency key.
  await page.click("#copy-a-b");
  await page.selectOption("#b-fault-kind", "non_idempotent_retry");
  await page.selectOption("#b-fault-target", "orders");
  await page.click("#b-fault-add");
  assert.deepEqual(
    await page.$$eval("#run-b .fault", (faults) => faults.map((f) => f.dataset.kind)),
    ["latency", "non_idempotent_retry"],
  );
  // The policy table: eleven edges; opening one shows its editor.
  assert.equal(await page.locator("#run-a .edge-row").count(), 11);
  await page.click("#run-a .form-section:nth-of-type(2) > summary");
  await page.click("#run-a .edge-row:has-text('payments') button");
  await page.waitForSelector("#run-a .edge-editor");
  await screenshot(page, "sandbox-form");
  await page.click("#run-a .edge-row:has-text('payments') button");

  await watchFrames(page);
  const started = Date.now();
  await page.click("#run-both");
  await page.waitForSelector("#state-a .run-progress, #result-a");
  await page.waitForSelector("#result-a", { timeout: 60000 });
  await page.waitForSelector("#result-b", { timeout: 60000 });
  const elapsed = Date.now() - started;
  const gap = await longestFrame(page);
  console.log(`sandbox: two 1-minute runs at 50 req/s in ${elapsed} ms, longest frame ${gap.toFixed(0)} ms`);
  assert.ok(gap < 500, `the page kept drawing frames: longest gap ${gap} ms`);

  const a = await figures(page, "a");
  const b = await figures(page, "b");
  assert.equal(Number(a.duplicateCharges), 0, "slow payments alone never charge twice");
  assert.ok(Number(b.duplicateCharges) > Number(a.duplicateCharges),
    `B charges twice: ${b.duplicateCharges} against ${a.duplicateCharges}`);
  assert.ok(Number(b.retries) > Number(a.retries));
  // The table shows the same numbers, with the verdict in words.
  const row = await page.$eval("tr[data-metric='duplicate charges']", (tr) => ({
    cells: [...tr.cells].map((c) => c.textContent.trim()),
    verdict: tr.dataset.verdict,
  }));
  assert.equal(number(row.cells[1]), Number(a.duplicateCharges));
  assert.equal(number(row.cells[2]), Number(b.duplicateCharges));
  assert.equal(row.verdict, "worse");
  assert.match(row.cells[4], /worse/);
  const requests = await page.$eval("tr[data-metric='requests']", (tr) => [...tr.cells].map((c) => c.textContent));
  assert.equal(number(requests[2]), Number(b.requests));
  // Both charts, each with A and B.
  for (const id of ["#chart-sandbox-p99", "#chart-sandbox-errors"]) {
    assert.deepEqual(await page.$$eval(`${id} .chart-legend li`, (li) => li.map((l) => l.textContent)), ["A", "B"]);
  }
  await page.hover("#chart-sandbox-p99 .chart-bucket[data-bucket='30']");
  assert.match(await page.textContent("#chart-sandbox-p99 .chart-tooltip"), /A.*B/s);
  await screenshot(page, "sandbox");

  // The URL holds both setups, the seeds and the finished runs: a reload computes the same.
  const url = new URL(page.url().replace("#", ""));
  assert.equal(url.searchParams.get("run"), "ab");
  assert.match(url.searchParams.get("b"), /non_idempotent_retry/);
  await page.reload();
  await page.waitForSelector("#result-b", { timeout: 60000 });
  await page.waitForSelector("#result-a", { timeout: 60000 });
  assert.deepEqual({ ...(await figures(page, "b")), wallMs: 0 }, { ...b, wallMs: 0 });
  assert.equal((await figures(page, "a")).p99Us, a.p99Us);

  // B in the lab: the same run, so the gateway served the same requests.
  await page.click("#run-b .open-in-lab");
  await page.waitForSelector("#lab-end");
  const lab = new URL(page.url().replace("#", ""));
  assert.equal(lab.searchParams.get("scenario"), "sandbox");
  assert.equal(lab.searchParams.get("seed"), "7");
  await page.click("#lab-end");
  await page.waitForSelector("#lab-state:text('finished')", { timeout: 60000 });
  const gateway = await page.$eval("#service-table tbody tr", (tr) => [...tr.cells].map((c) => c.textContent));
  assert.equal(gateway[0], "gateway");
  assert.equal(number(gateway[2]), Number(b.requests), "the lab's gateway requests are B's");
  await screenshot(page, "sandbox-lab-b", { fullPage: false });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a shared comparison in dark theme, and a bad setup in the lab says what is wrong", async () => {
  const { context, page, errors } = await openPage(browser, { colorScheme: "dark", width: 1440, height: 900 });
  const b = encodeURIComponent(JSON.stringify({
    ms: 60000, stock: 200,
    faults: [{ service: "inventory", from_ms: 0, until_ms: 60000, effect: { kind: "stock_race" } }],
  }));
  await visit(page, `/sandbox?a=${encodeURIComponent('{"ms":60000,"stock":200}')}&b=${b}&run=ab`);
  await page.waitForSelector("#result-b", { timeout: 60000 });
  await page.waitForSelector("#versus-table");
  const oversold = await page.$eval("tr[data-metric='oversold units']", (tr) => tr.dataset.verdict);
  assert.equal(oversold, "worse", "a stock race at low stock oversells");
  await screenshot(page, "sandbox-dark");

  await visit(page, `/lab?scenario=sandbox&setup=${encodeURIComponent('{"rate":5000}')}`);
  await page.waitForSelector(".notice.error");
  assert.match(await page.textContent(".notice.error"), /rate_per_s: must be above 0/);
  await visit(page, `/lab?scenario=sandbox&setup=${encodeURIComponent('{"rate":')}`);
  await page.waitForSelector(".notice.error");
  assert.match(await page.textContent(".notice.error"), /does not read/);
  assert.deepEqual(errors, []);
  await context.close();
});

test("both runs at the defaults, then at the heaviest setup, keep the page responsive", async () => {
  const { context, page, errors } = await openPage(browser);
  // The defaults: five minutes at 50 requests a second, twice.
  await visit(page, "/sandbox");
  await page.waitForSelector("#run-both");
  await watchFrames(page);
  let started = Date.now();
  await page.click("#run-both");
  await page.waitForSelector("#result-a", { timeout: 60000 });
  await page.waitForSelector("#result-b", { timeout: 60000 });
  let elapsed = Date.now() - started;
  let gap = await longestFrame(page);
  const a = await figures(page, "a");
  const b = await figures(page, "b");
  console.log(`sandbox: both runs at the defaults (5 min at 50 req/s, ${a.requests} requests each) in ${elapsed} ms `
    + `(A ${a.wallMs} ms, B ${b.wallMs} ms), longest frame ${gap.toFixed(0)} ms`);
  assert.deepEqual({ ...a, wallMs: 0 }, { ...b, wallMs: 0 }, "the same setup and seed is the same run");
  assert.ok(gap < 500, `longest gap between frames ${gap} ms`);

  // The heaviest: ten minutes at 200 requests a second, twice. The form answers meanwhile.
  const heavy = encodeURIComponent('{"rate":200,"ms":600000}');
  await visit(page, `/sandbox?a=${heavy}&b=${heavy}`);
  await page.waitForSelector("#run-both");
  await watchFrames(page);
  started = Date.now();
  await page.click("#run-both");
  await page.waitForSelector("#state-b .run-progress");
  await type(page, "#b-seed", "9");
  await page.waitForSelector("#result-a", { timeout: 120000 });
  await page.waitForSelector("#result-b", { timeout: 120000 });
  elapsed = Date.now() - started;
  gap = await longestFrame(page);
  const h = await figures(page, "a");
  console.log(`sandbox: both runs at 10 min and 200 req/s (${h.requests} requests each) in ${elapsed} ms, `
    + `longest frame ${gap.toFixed(0)} ms`);
  assert.ok(Number(h.requests) > 110000);
  assert.ok(gap < 500, `longest gap between frames ${gap} ms`);
  // B's seed changed while it ran: its figures are marked as from the setup before.
  assert.match(await page.textContent("#state-b .run-note"), /changed since/);
  assert.match(page.url(), /seed_b=9/);
  assert.match(page.url(), /run=a(?!b)/);
  assert.deepEqual(errors, []);
  await context.close();
});
