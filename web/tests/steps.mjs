// Single steps in Chromium for tests/test_web_e2e.py, read from stdin one JSON line at a time
// ({"who", "step", ...}); each answers `ok` with a value, or `failed` with the reason. One browser context
// (profile) per user. web/tests/e2e.mjs, by contrast, runs one fixed scenario.

import { createInterface } from "node:readline";
import { launchChromium, newWatchedPage } from "./browser.mjs";

const { url } = JSON.parse(process.env.CONFRERE_E2E);
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
