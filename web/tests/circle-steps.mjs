// Single steps in Chromium for tests/test_web_circles.py, read from stdin one JSON line at a time
// ({"who", "step", ...}), answered `ok` with a value or `failed` with the reason; one browser context
// (profile) per user, so that each professional's keys stay in their own IndexedDB. The steps are
// generic (fill a labelled field, press a button, read text, run axe-core, photograph) so that the test
// reads as what a person does on the circle screens.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { axeViolations, launchChromium, newWatchedPage } from "./browser.mjs";

const { url, screenshots } = JSON.parse(process.env.CONFRERE_E2E);
const say = (event, data = {}) => process.stdout.write(`@@e2e ${JSON.stringify({ event, ...data })}\n`);
const problems = [];
const pages = new Map();
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1024, height: 640 };

const browser = await launchChromium();

async function pageFor(who) {
  if (!pages.has(who)) pages.set(who, await newWatchedPage(browser, who, problems));
  return pages.get(who);
}

const button = (page, name) => page.getByRole("button", { name, exact: true });

const STEPS = {
  // Logs in and registers this browser profile as a device; `lands` is the first screen's heading.
  async enrol(page, { email, password, suite, lands = "Peer circles" }) {
    await page.goto(`${url}/app/`);
    await page.getByRole("heading", { level: 1, name: "Log in" }).waitFor();
    await page.getByLabel("E-mail").fill(email);
    await page.getByLabel("Password").fill(password);
    await button(page, "Log in").click();
    await page.getByRole("heading", { level: 1, name: "Register this browser" }).waitFor();
    await page.locator(`input[name=suite][value=${suite}]`).check();
    await button(page, "Create keys and register").click();
    await page.getByRole("heading", { level: 1, name: lands }).waitFor();
  },
  // A full page load of a screen (keys come back from IndexedDB), until `ready` shows.
  async open(page, { hash, ready }) {
    await page.goto("about:blank");
    await page.goto(`${url}/app/${hash}`);
    await page.locator(ready).waitFor();
  },
  // Labels are matched from their start: a field's label also holds its hint (dom.js `field`).
  fill: (page, { label, value, within = "main", exact = false }) =>
    page.locator(within).getByLabel(label, { exact }).fill(value),
  check: (page, { label, within = "main" }) => page.locator(within).getByLabel(label).check(),
  choose: (page, { label, value, within = "main" }) => page.locator(within).getByLabel(label).selectOption(value),
  // Presses a button (within a part of the page), then waits until `then` shows.
  async press(page, { button: name, then, within = "main" }) {
    await page.locator(within).getByRole("button", { name, exact: true }).click();
    await page.locator(then).waitFor();
  },
  async follow(page, { link, then }) {
    await page.locator("main").getByRole("link", { name: link, exact: true }).click();
    await page.locator(then).waitFor();
  },
  async expand(page, { summary, within }) {
    await page.locator(within).locator("summary", { hasText: summary }).click();
  },
  wait: (page, { selector }) => page.locator(selector).waitFor(),
  text: (page, { selector }) => page.locator(selector).first().textContent(),
  attribute: (page, { selector, name }) => page.locator(selector).first().getAttribute(name),
  texts: (page, { selector }) => page.locator(selector).allTextContents(),
  count: (page, { selector }) => page.locator(selector).count(),
  enabled: (page, { selector }) => page.locator(selector).first().isEnabled(),
  buttons: (page, { within = "main" }) => page.locator(within).getByRole("button").allTextContents(),
  axe: (page) => axeViolations(page),
  // Tabs from the top of the page until the focused element's text is `name`, then presses Enter: the
  // control is reachable by keyboard alone. Answers how many Tab presses it took.
  async keyboard(page, { name, then }) {
    await page.locator("body").focus();
    for (let presses = 1; presses <= 80; presses++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? "");
      if (focused === name) {
        await page.keyboard.press("Enter");
        await page.locator(then).waitFor();
        return presses;
      }
    }
    throw new Error(`${name} is not reachable with the Tab key`);
  },
  // At 390 px wide: whether the page scrolls sideways (it must not).
  async phone(page) {
    await page.setViewportSize(PHONE);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    return overflow;
  },
  desktop: (page) => page.setViewportSize(DESKTOP),
  // A lying server, played by rewriting its answers in this page: the circle and its epochs are served as
  // if the current epoch were `epoch` (and nothing newer held). `honest` ends it.
  async rollback(page, { circleId, epoch }) {
    await page.route(new RegExp(`/v1/circles/${circleId}(/epochs)?$`), async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      body.current_epoch = epoch;
      body.rotation_required = false;
      if (body.epochs) body.epochs = body.epochs.filter((held) => held.epoch <= epoch);
      await route.fulfill({ response, json: body });
    });
  },
  // The lying server again: the post `postId` in the circle's list is shown as written by another member.
  async misattribute(page, { circleId, postId, userId, name }) {
    await page.route(new RegExp(`/v1/circles/${circleId}/posts(\\?.*)?$`), async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      for (const item of body.items.filter((post) => post.id === postId)) {
        item.author = { kind: "member", user_id: userId, display_name: name };
      }
      await route.fulfill({ response, json: body });
    });
  },
  honest: (page) => page.unrouteAll(),
  async shot(page, { name, full = true }) {
    if (!screenshots) return null;
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: full });
    return name;
  },
};

try {
  say("ready");
  for await (const line of createInterface({ input: process.stdin })) {
    const { who, step, ...args } = JSON.parse(line);
    const page = await pageFor(who);
    try {
      const value = await STEPS[step](page, args);
      say("ok", { value: value ?? null });
    } catch (error) {
      // What the page told the user, if anything: usually why the step's result never showed.
      const notice = await page.locator("#notice:visible").textContent({ timeout: 500 }).catch(() => null);
      const code = await page.locator("#notice").getAttribute("data-code", { timeout: 500 }).catch(() => null);
      const main = await page.locator("main").innerText({ timeout: 500 }).catch(() => "");
      say("failed", { step, error: error.message, notice, code, main: main.slice(0, 2000) });
    }
  }
  if (problems.length) throw new Error(`errors in the pages:\n${problems.join("\n")}`);
} finally {
  await browser.close();
}
