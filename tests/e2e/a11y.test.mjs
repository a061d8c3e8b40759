// Accessibility: every page and every lab view, in the light and the dark theme, checked by
// axe-core (the engine behind Lighthouse's audit) against WCAG 2.1 A and AA: contrast, labels,
// names that match what is drawn, roles and their required children. A violation fails the
// test with the rule, the elements and why.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { launch, openPage, visit } from "./harness.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** The violations axe-core finds on the page as it is now: a line per rule broken. */
async function violations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.addScriptTag({ path: AXE });
  }
  const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags } }), TAGS);
  return result.violations.map((v) => {
    const n = v.nodes[0];
    return `${v.id} (${v.impact}) on ${v.nodes.length} element(s), first ${n.target.join(" ")}: ` +
      (n.failureSummary ?? "").replace(/\s+/g, " ").trim();
  });
}

/** The pages and lab views, each reached as a learner reaches it. */
const SCREENS = [
  ["home", async (page) => visit(page, "/")],
  ["lesson", async (page) => { await visit(page, "/"); await page.click(".lesson-list a >> nth=0"); await page.waitForSelector(".lesson, .page-header"); }],
  ["flashcards", async (page) => visit(page, "/flashcards")],
  ["author", async (page) => visit(page, "/author")],
  ["settings", async (page) => visit(page, "/settings")],
  ["lab overview", async (page) => { await visit(page, "/lab?t=60000"); await page.waitForSelector("#lab-state:text('paused')", { timeout: 30000 }); }],
  ["lab map", async (page) => { await visit(page, "/lab?t=60000&view=map"); await page.waitForSelector(".service-map .node", { timeout: 30000 }); }],
  ["lab traces", async (page) => { await visit(page, "/lab?t=60000&view=traces"); await page.waitForSelector("#trace-results > li", { timeout: 30000 }); }],
  ["lab trace", async (page) => {
    await visit(page, "/lab?t=60000&view=traces");
    await page.waitForSelector("#trace-results > li", { timeout: 30000 });
    await page.click("#trace-results > li:first-child .trace-result-title");
    await page.waitForSelector(".trace-page", { timeout: 30000 });
  }],
  ["lab logs", async (page) => { await visit(page, "/lab?t=60000&view=logs"); await page.waitForSelector(".log-row", { timeout: 30000 }); }],
  ["lab metrics", async (page) => { await visit(page, "/lab?t=60000&view=metrics"); await page.waitForSelector(".metrics svg", { timeout: 30000 }); }],
  // Two short runs compared, a fault with its parameters, an edge's policy editor open and a
  // field with a problem.
  ["sandbox", async (page) => {
    const b = encodeURIComponent(JSON.stringify({ ms: 60000, faults: [
      { service: "payments", from_ms: 0, until_ms: 60000, effect: { kind: "latency", extra_ms: 900 } }] }));
    await visit(page, `/sandbox?a=${encodeURIComponent('{"ms":60000}')}&b=${b}&run=ab`);
    await page.waitForSelector("#versus-table", { timeout: 60000 });
    await page.click("#run-b .form-section:nth-of-type(2) > summary");
    await page.click("#run-b .edge-row:has-text('payments') button");
    await page.fill("#a-rate_per_s", "fast");
    await page.press("#a-rate_per_s", "Tab");
    await page.waitForSelector("#a-rate_per_s-error");
  }],
];

for (const scheme of ["light", "dark"]) {
  test(`every page and lab view meets WCAG 2.1 AA in the ${scheme} theme`, async () => {
    const { context, page, errors } = await openPage(browser, { colorScheme: scheme });
    const found = [];
    for (const [name, reach] of SCREENS) {
      await reach(page);
      for (const v of await violations(page)) found.push(`${name}: ${v}`);
    }
    assert.deepEqual(found, [], `axe-core found:\n${found.join("\n")}`);
    assert.deepEqual(errors, []);
    await context.close();
  });
}
