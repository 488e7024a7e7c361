// Debian's Chromium for the end-to-end drivers (e2e.mjs, steps.mjs): how it is launched, and the pages'
// errors collected, so that a run fails when any page throws or logs one.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { chromium } from "playwright-core";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's serious and critical violations on the page as it is now, in words. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.filter((v) => ["serious", "critical"].includes(v.impact))
      .map((v) => `${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  });
}

// Playwright launches Chromium with a fresh temporary profile (user-data dir) and removes it on close.
export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

// A page in a browser context of its own (one per user), whose errors are pushed to `problems`.
export async function newWatchedPage(browser, name, problems, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 640 }, locale: "en-GB", ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (error) => problems.push(`${name}: ${error.message}`));
  // Refused requests (401 on a wrong password, for instance) are logged as "Failed to load resource";
  // anything else logged as an error, CSP violations included, fails the run.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(`${name}: ${message.text()}`);
    }
  });
  return page;
}
