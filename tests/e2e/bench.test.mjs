// The engine benchmark in the browser: opens the diagnostics page as the app runs it, after its
// idle-time warm-up (once, then in three more fresh browsers for the first lesson's median), and
// once with nothing warmed (`?cold`); waits for the timed runs and prints their figures
// (figures to compare with `faultline bench`, not a pass/fail on speed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function bench(route, label) {
  const { context, page, errors } = await openPage(browser);
  await visit(page, route);
  await page.waitForSelector("#bench-results", { timeout: 120000 });
  const warmup = await page.$eval("#bench-warmup", (p) => ({ text: p.textContent, busy: Number(p.dataset.busy), checks: Number(p.dataset.checks) }));
  const rows = await page.$$eval("#bench-results tbody tr", (trs) =>
    trs.map((tr) => ({
      name: tr.cells[0].textContent,
      requests: Number(tr.cells[1].textContent),
      spans: Number(tr.dataset.spans),
      logs: Number(tr.cells[3].textContent),
      millis: Number(tr.dataset.millis),
      memory: tr.cells[6].textContent,
    })));
  assert.equal(rows.length, 3);
  console.log(`wasm bench (${label}): ${warmup.text}`);
  for (const r of rows) {
    assert.ok(r.spans > 0 && r.millis > 0, JSON.stringify(r));
    console.log(`wasm bench (${label}): ${r.name}: ${r.requests} requests, ${r.spans} spans, ${r.logs} log lines in ${r.millis.toFixed(1)} ms (${Math.round(r.spans / (r.millis / 1000))} spans/s), wasm memory ${r.memory}`);
  }
  // The lesson gives the same telemetry however warm the engine is.
  assert.equal(rows[0].spans, rows[1].spans);
  assert.deepEqual(errors, []);
  return { context, page, warmup, rows };
}

test("the engine runs in wasm and reports its speed, after the app's warm-up", async () => {
  const { context, page, warmup } = await bench("/debug/bench", "warmed up");
  assert.ok(warmup.busy > 0, "the app warmed the engine up before the runs");
  // It timed check runs until two in a row ran as fast (at most 12).
  assert.ok(warmup.checks >= 2 && warmup.checks <= 12, `${warmup.checks} check runs`);
  await page.waitForSelector("#bench-logql", { timeout: 120000 });
  const queries = await page.$$eval("#bench-logql tbody tr", (trs) =>
    trs.map((tr) => ({
      query: tr.cells[0].textContent,
      lines: Number(tr.dataset.lines),
      hits: Number(tr.dataset.hits),
      millis: Number(tr.dataset.millis),
      view: Number(tr.dataset.viewMillis),
    })));
  assert.equal(queries.length, 5);
  for (const q of queries) {
    assert.ok(q.lines >= 1000000, `a million lines or more: ${q.lines}`);
    console.log(`wasm log query: ${q.millis.toFixed(1)} ms (${q.view.toFixed(1)} ms with volume and fields) over ${q.lines} lines, ${q.hits} hits: ${q.query}`);
  }
  // The last selects every line.
  assert.equal(queries[4].hits, queries[4].lines);
  await screenshot(page, "bench");
  await context.close();
});

test("the first lesson after start-up, in three more fresh browsers", async () => {
  // One page shares the machine with whatever else runs then (the browser before it shutting
  // down, another job): three more fresh browsers give a median to read the floor against.
  const firsts = [];
  for (let i = 0; i < 3; i++) {
    const own = await launch();
    try {
      const { page, errors } = await openPage(own);
      await visit(page, "/debug/bench");
      await page.waitForSelector("#bench-results", { timeout: 120000 });
      const millis = await page.$$eval("#bench-results tbody tr", (trs) => trs.map((tr) => Number(tr.dataset.millis)));
      assert.ok(millis[0] > 0 && millis[1] > 0, JSON.stringify(millis));
      assert.deepEqual(errors, []);
      firsts.push(millis[0]);
    } finally {
      await own.close();
    }
  }
  const median = [...firsts].sort((a, b) => a - b)[1];
  console.log(`wasm bench (fresh browsers): first lesson ${firsts.map((m) => m.toFixed(1)).join(", ")} ms; median ${median.toFixed(1)} ms`);
});

test("the engine's first run in a fresh tab, with nothing warmed", async () => {
  const { context, warmup } = await bench("/debug/bench?cold", "cold");
  assert.equal(warmup.busy, 0);
  await context.close();
});
