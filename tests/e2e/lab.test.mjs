// The lab: a run plays on its own, pauses with its clock in the URL, jumps to the end, and comes
// back the same after a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** The clock `m:ss.s` in milliseconds. */
function clockMs(text) {
  const [m, s] = text.trim().split(":");
  return Math.round((Number(m) * 60 + Number(s)) * 1000);
}

const number = (text) => Number(text.replaceAll(",", ""));

test("the lab plays, pauses into the URL, jumps to the end and survives a reload", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/lab");
  await page.waitForSelector("#lab-pause");
  // Playing at 10x: the clock moves and telemetry arrives.
  await page.waitForFunction(() => document.querySelector("#lab-clock")?.textContent !== "0:00.0");
  const first = clockMs(await page.textContent("#lab-clock"));
  await page.waitForTimeout(500);
  const second = clockMs(await page.textContent("#lab-clock"));
  assert.ok(second > first, `the clock moves while playing: ${first} then ${second}`);
  await screenshot(page, "lab-playing");

  await page.click("#lab-pause");
  await page.waitForSelector("#lab-play");
  const pausedAt = clockMs(await page.textContent("#lab-clock"));
  await page.waitForTimeout(300);
  assert.equal(clockMs(await page.textContent("#lab-clock")), pausedAt, "paused means paused");
  const url = new URL(page.url().replace("#", ""));
  assert.equal(url.searchParams.get("seed"), "7");
  assert.ok(Math.abs(Number(url.searchParams.get("t")) - pausedAt) < 100, page.url());

  await page.click("#lab-end");
  await page.waitForSelector("#lab-state:text('finished')", { timeout: 30000 });
  const endClock = clockMs(await page.textContent("#lab-clock"));
  assert.ok(endClock >= 300000, `the run ends after its five minutes: ${endClock}`);
  const traces = number(await page.textContent("#stat-traces"));
  const spans = number(await page.textContent("#stat-spans"));
  assert.ok(traces > 14000 && spans > 100000, `${traces} traces, ${spans} spans`);
  const gateway = await page.$eval("#service-table tbody tr", (tr) => [...tr.cells].map((c) => c.textContent));
  assert.equal(gateway[0], "gateway");
  await screenshot(page, "lab-finished");

  // A reload runs the same scenario and seed to the same clock: the same run.
  await page.reload();
  await page.waitForSelector("#lab-state:text('finished')", { timeout: 30000 });
  assert.equal(number(await page.textContent("#stat-spans")), spans);
  assert.equal(clockMs(await page.textContent("#lab-clock")), endClock);
  assert.deepEqual(errors, []);
  await context.close();
});

test("an unknown scenario in the URL says so, and the app keeps working", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/lab?scenario=nope");
  await page.waitForSelector(".notice.error");
  assert.match(await page.textContent(".notice.error"), /no scenario called `nope`/);
  await page.click("a[href='#/']");
  await page.waitForSelector(".module-card");
  assert.deepEqual(errors, []);
  await context.close();
});
