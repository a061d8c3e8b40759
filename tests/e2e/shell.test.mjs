// The app shell: it loads without console errors, every route renders in both themes, the
// theme setting persists across reloads, and a panic shows the crash screen.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, visit, screenshot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("the home page shows the course map without console errors", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/");
  await page.waitForSelector(".module-card");
  assert.equal(await page.textContent("h1"), "Debugging distributed systems");
  const modules = await page.locator(".module-card").count();
  const lessons = await page.locator(".lesson-row").count();
  assert.ok(modules >= 3, `modules: ${modules}`);
  assert.ok(lessons >= modules, `lessons: ${lessons}`);
  assert.equal(await page.locator("#loading").count(), 0, "the loader is gone");
  assert.deepEqual(errors, []);
  await context.close();
});

const PAGES = [
  { name: "home", route: "/", nav: "Course", ready: ".module-card" },
  { name: "lesson", route: "/lesson/missing-timeout", nav: "Course", ready: ".lesson .goals" },
  { name: "lab", route: "/lab", nav: "Lab", ready: "#service-table tbody tr" },
  { name: "flashcards", route: "/flashcards", nav: "Flashcards", ready: ".empty-state" },
  { name: "author", route: "/author", nav: "Author", ready: ".notice.ok" },
  { name: "settings", route: "/settings", nav: "Settings", ready: ".choice-group" },
  { name: "not-found", route: "/no/such/page", nav: null, ready: ".empty-state" },
];

for (const scheme of ["light", "dark"]) {
  test(`every page renders in the ${scheme} theme`, async () => {
    const { context, page, errors } = await openPage(browser, { colorScheme: scheme });
    for (const p of PAGES) {
      await visit(page, p.route);
      await page.waitForSelector(p.ready);
      const active = await page.locator(".nav-link.active").allTextContents();
      assert.deepEqual(active.map((t) => t.trim()), p.nav ? [p.nav] : [], `${p.name}: active nav`);
      await screenshot(page, `${p.name}-${scheme}`);
    }
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const dark = scheme === "dark";
    assert.equal(isDark(background), dark, `${scheme} background is ${background}`);
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test("navigation works by clicking, including lesson to lesson", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/");
  await page.click(".lesson-row >> nth=0");
  await page.waitForSelector(".lesson .goals");
  const first = await page.textContent("h1");
  await page.click(".pager-link.next");
  await page.waitForFunction((t) => document.querySelector("h1")?.textContent !== t, first);
  assert.notEqual(await page.textContent("h1"), first);
  await page.click("text=Lab");
  await page.waitForSelector(".playback");
  assert.match(page.url(), /#\/lab/);
  await page.goBack();
  await page.waitForSelector(".lesson .goals");
  assert.deepEqual(errors, []);
  await context.close();
});

test("the theme chosen in settings persists across a reload", async () => {
  // The system says light; the learner picks dark.
  const { context, page, errors } = await openPage(browser, { colorScheme: "light" });
  await visit(page, "/settings");
  await page.check("input[value=dark]");
  assert.equal(await page.getAttribute("html", "data-theme"), "dark");
  await page.reload();
  await page.waitForSelector(".choice-group");
  assert.equal(await page.getAttribute("html", "data-theme"), "dark");
  assert.ok(await page.isChecked("input[value=dark]"));
  assert.ok(isDark(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)));
  await screenshot(page, "settings-dark-chosen");
  await page.check("input[value=system]");
  assert.equal(await page.getAttribute("html", "data-theme"), null);
  assert.ok(!isDark(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)));
  assert.deepEqual(errors, []);
  await context.close();
});

test("a panic is logged and shows a recoverable crash screen", async () => {
  const { context, page, errors } = await openPage(browser);
  await visit(page, "/debug/panic");
  await page.waitForSelector(".crash");
  assert.match(await page.textContent(".crash h1"), /Faultline stopped/);
  assert.ok(errors.some((e) => e.includes("Faultline crashed") && e.includes("deliberate panic")), errors.join("\n"));
  await screenshot(page, "crash");
  await page.click("text=Reload on the home page");
  await page.waitForSelector(".module-card");
  assert.match(page.url(), /#\/$/);
  await context.close();
});

/** Whether a CSS rgb() colour is dark (perceived luminance under one half). */
function isDark(rgb) {
  const [r, g, b] = rgb.match(/\d+/g).map(Number);
  return 0.299 * r + 0.587 * g + 0.114 * b < 128;
}
