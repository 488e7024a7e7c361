// Single steps in Chromium for tests/test_web_e2e.py, read from stdin one JSON line at a time
// ({"who", "step", ...}); each answers `ok` with a value, or `failed` with the reason. One browser context
// (profile) per user. web/tests/e2e.mjs, by contrast, runs one fixed scenario.

import { join } from "node:path";
import { createInterface } from "node:readline";
import { axeViolations, launchChromium, newWatchedPage } from "./browser.mjs";

const { url, screenshots } = JSON.parse(process.env.CONFRERE_E2E);
const say = (event, data = {}) => process.stdout.write(`@@e2e ${JSON.stringify({ event, ...data })}\n`);
const problems = [];
const pages = new Map();

const browser = await launchChromium();

async function pageFor(who) {
  if (!pages.has(who)) pages.set(who, await newWatchedPage(browser, who, problems));
  return pages.get(who);
}

const heading = (page, name) => page.getByRole("heading", { level: 1, name }).waitFor();

const STEPS = {
  // Logs in and registers this browser profile as a device of the suite.
  async enrol(page, { email, password, suite }) {
    await page.goto(`${url}/app/`);
    await heading(page, "Log in");
    await page.getByLabel("E-mail").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Log in" }).click();
    await heading(page, "Register this browser");
    await page.locator(`input[name=suite][value=${suite}]`).check();
    await page.getByRole("button", { name: "Create keys and register" }).click();
    await heading(page, "My cases");
  },
  // A full page load of a screen (keys come back from IndexedDB), until `ready` shows.
  async open(page, { hash, ready }) {
    await page.goto("about:blank");
    await page.goto(`${url}/app/${hash}`);
    await page.locator(ready).waitFor();
  },
  // Presses a button, then waits until `then` shows.
  async press(page, { button, then }) {
    await page.getByRole("button", { name: button, exact: true }).click();
    await page.locator(then).waitFor();
  },
  choose: (page, { label, value }) => page.getByLabel(label).selectOption(value),
  wait: (page, { selector }) => page.locator(selector).waitFor(),
  text: (page, { selector }) => page.locator(selector).textContent(),
  buttons: (page) => page.locator("form.actions button").allTextContents(),
  options: (page, { label }) => page.getByLabel(label).locator("option").allTextContents(),
  follow: async (page, { link, then }) => {
    await page.getByRole("link", { name: link, exact: true }).click();
    await page.locator(then).waitFor();
  },
  // Tabs from the top of the page to the control named `name` and presses Enter: reachable by keyboard.
  async keyboard(page, { name, then }) {
    await page.locator("body").focus();
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
      if (focused === name) {
        await page.keyboard.press("Enter");
        return page.locator(then).waitFor();
      }
    }
    throw new Error(`${name} cannot be reached with the Tab key`);
  },
  // axe-core's serious and critical violations on the page as it is, at the given width (none overflowing).
  async audit(page, { width = 1024 }) {
    await page.setViewportSize({ width, height: 844 });
    const overflow = await page.evaluate((w) => document.documentElement.scrollWidth > w, width);
    const found = await axeViolations(page);
    await page.setViewportSize({ width: 1024, height: 640 });
    return [...found, ...(overflow ? [`wider than ${width} px`] : [])];
  },
  language: (page, { code }) => page.locator("#language").selectOption(code),
  // docs/screenshots/<name>.png when `make web-screenshots` asks for them.
  async screenshot(page, { name }) {
    if (screenshots) await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
  },
};

try {
  say("ready");
  for await (const line of createInterface({ input: process.stdin })) {
    const { who, step, ...args } = JSON.parse(line);
    try {
      const value = await STEPS[step](await pageFor(who), args);
      say("ok", { value: value ?? null });
    } catch (error) {
      say("failed", { step, error: error.message });
    }
  }
  if (problems.length) throw new Error(`errors in the pages:\n${problems.join("\n")}`);
} finally {
  await browser.close();
}
