// The lab's Logs view: a LogQL query narrows the lines, a bad one shows its error at its column,
// a value in the fields panel filters, a line opens with its context, the clocks toggle, and a
// trace id opens the trace.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const number = (text) => Number(text.replace(/[^0-9]/g, ""));

async function query(page, text) {
  await page.fill("#logql-input", text);
  await page.click("#logql-run");
  await page.waitForFunction((q) => new URL(location.href.replace("#", "")).searchParams.get("q") === q, text);
}

test("log queries, fields, details and context in the lab", async () => {
  const { context, page, errors } = await openPage(browser, { width: 1400, height: 1000 });
  await visit(page, "/lab?t=60000&view=logs");
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  const all = number(await page.textContent("#log-count"));
  assert.ok(all > 5000, `every line of the first minute: ${all}`);

  await query(page, '{service="orders"} |= "completed"');
  const orders = number(await page.textContent("#log-count"));
  assert.ok(orders > 0 && orders < all, `${orders} of ${all}`);
  const instances = await page.$$eval(".log-row .inst", (cells) => cells.map((c) => c.textContent));
  assert.ok(instances.length > 10 && instances.length < 100, `virtualized: ${instances.length} rows drawn`);
  assert.ok(instances.every((i) => i.startsWith("orders-")), instances.join());

  // A value from the fields panel joins the selector.
  await page.click(".log-fields button[aria-label='Keep only instance = orders-1']");
  await page.waitForFunction(() => document.querySelector("#logql-input").value.includes('instance="orders-1"'));
  const one = await page.$$eval(".log-row .inst", (cells) => cells.map((c) => c.textContent));
  assert.ok(one.length > 0 && one.every((i) => i === "orders-1"), one.join());

  // A line opens with both timestamps and its context on the same instance.
  await page.click(".log-row >> nth=3");
  await page.waitForSelector(".log-detail");
  assert.match(await page.textContent("#detail-node-ts"), /^2026-01-01T00:00:\d\d\.\d{6}Z$/);
  const around = await page.$$eval("#log-context li", (lis) => lis.length);
  assert.ok(around >= 6, `context lines: ${around}`);
  await screenshot(page, "lab-logs");
  await page.keyboard.press("Escape");

  // A query the parser refuses says where.
  await page.fill("#logql-input", '{service="orders" |= "x"');
  await page.click("#logql-run");
  await page.waitForSelector("#logql-error");
  const error = await page.textContent("#logql-error");
  assert.match(error, /column 19/);
  assert.match(error, /\n {18}\^/);
  await screenshot(page, "lab-logs-error");

  // `/` focuses the query bar.
  await page.click("h1");
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "logql-input");
  assert.deepEqual(errors, []);
  await context.close();
});

test("the clock toggle switches the rows between the node clock and true time, in the URL", async () => {
  const { context, page, errors } = await openPage(browser, { width: 1400, height: 1000 });
  await visit(page, '/lab?t=20000&view=logs&q={service="orders"}');
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  await page.click(".log-row >> nth=0");
  const node = await page.textContent("#detail-node-ts");
  await page.click("#clock-true");
  // The clock goes into the URL, and the rows follow it.
  await page.waitForFunction(() => new URL(location.href.replace("#", "")).searchParams.get("clock") === "true");
  await page.waitForSelector("#clock-true[aria-pressed=true]");
  const row = await page.textContent(".log-row.selected .ts");
  assert.equal(row, await page.textContent("#detail-true-ts"));
  assert.match(node, /Z$/);

  // A reload comes back on true time.
  const url = page.url();
  await page.reload();
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  await page.waitForSelector(".log-row");
  assert.equal(page.url(), url);
  assert.equal(await page.getAttribute("#clock-true", "aria-pressed"), "true");
  assert.equal(await page.getAttribute("#clock-node", "aria-pressed"), "false");
  await page.click(".log-row >> nth=0");
  assert.equal(await page.textContent(".log-row.selected .ts"), await page.textContent("#detail-true-ts"));

  // Back to the node clock, the default: the URL no longer names one.
  await page.click("#clock-node");
  await page.waitForFunction(() => !new URL(location.href.replace("#", "")).searchParams.has("clock"));
  await page.waitForSelector("#clock-node[aria-pressed=true]");
  assert.equal(await page.textContent(".log-row.selected .ts"), await page.textContent("#detail-node-ts"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("the service map shows the calls, and a clicked service focuses the logs and traces", async () => {
  const { context, page, errors } = await openPage(browser, { width: 1400, height: 1000 });
  await visit(page, "/lab?t=60000&view=map");
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  await page.waitForSelector(".service-map .node");
  const services = await page.$$eval(".service-map .node", (nodes) => nodes.map((n) => n.dataset.service));
  for (const s of ["gateway", "orders", "payments", "database", "cache", "queue", "notifications"]) {
    assert.ok(services.includes(s), `${s} in ${services}`);
  }
  // The database writes no spans: it is drawn from its callers' spans, dashed.
  assert.ok(await page.$(".service-map .node.uninstrumented[data-service=database]"));
  assert.ok((await page.$$(".service-map .edge path")).length >= 8);
  await screenshot(page, "lab-map");

  await page.click(".service-map .node[data-service=orders]");
  await page.waitForFunction(() => new URL(location.href.replace("#", "")).searchParams.get("service") === "orders");
  assert.equal(await page.getAttribute(".service-map .node[data-service=orders]", "aria-pressed"), "true");
  await page.click("#lab-tab-logs");
  await page.waitForSelector("#logql-input");
  assert.equal(await page.inputValue("#logql-input"), '{service="orders"}');
  const instances = await page.$$eval(".log-row .inst", (cells) => cells.map((c) => c.textContent));
  assert.ok(instances.length > 0 && instances.every((i) => i.startsWith("orders-")), instances.join());
  // A trace id in a line opens that trace.
  const id = await page.getAttribute(".log-row .trace-link >> nth=0", "title");
  await page.click(".log-row .trace-link >> nth=0");
  await page.waitForFunction(() => new URL(location.href.replace("#", "")).searchParams.get("view") === "traces");
  const trace = new URL(page.url().replace("#", "")).searchParams.get("trace");
  assert.ok(id.endsWith(trace), `${id} opens ${trace}`);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a trace's logs open in the log view, each line of that trace", async () => {
  const { context, page, errors } = await openPage(browser, { width: 1400, height: 1000 });
  await visit(page, "/lab?t=60000&view=traces");
  await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 });
  await page.waitForSelector("#trace-results > li");
  // A trace still in progress at the pause has written no lines yet: take the newest finished one.
  await page.click("#trace-results > li:not(.in-progress) .trace-result-title >> nth=0");
  await page.waitForSelector("#trace-logs");
  const trace = new URL(page.url().replace("#", "")).searchParams.get("trace");
  await page.click("#trace-logs");
  await page.waitForSelector("#logql-input");
  assert.equal(await page.inputValue("#logql-input"), `{trace_id="${trace}"}`);
  const links = await page.$$eval(".log-row .trace-link", (as) => as.map((a) => a.title));
  assert.ok(links.length > 0 && links.every((t) => t.endsWith(trace)), links.join());
  assert.deepEqual(errors, []);
  await context.close();
});
