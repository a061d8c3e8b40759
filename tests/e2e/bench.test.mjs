// The engine benchmark in the browser: opens the diagnostics page, waits for both timed runs
// and prints their figures (figures to compare with `faultline bench`, not a pass/fail on speed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("the engine runs in wasm and reports its speed", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/debug/bench");
  await page.waitForSelector("#bench-results", { timeout: 120000 });
  const rows = await page.$$eval("#bench-results tbody tr", (trs) =>
    trs.map((tr) => ({
      name: tr.cells[0].textContent,
      requests: Number(tr.cells[1].textContent),
      spans: Number(tr.dataset.spans),
      logs: Number(tr.cells[3].textContent),
      millis: Number(tr.dataset.millis),
    })));
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.ok(r.spans > 0 && r.millis > 0, JSON.stringify(r));
    console.log(`wasm bench: ${r.name}: ${r.requests} requests, ${r.spans} spans, ${r.logs} log lines in ${r.millis.toFixed(1)} ms (${Math.round(r.spans / (r.millis / 1000))} spans/s)`);
  }
  await screenshot(page, "bench");
  assert.deepEqual(errors, []);
  await context.close();
});
