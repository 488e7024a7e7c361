// Debian's Chromium for the end-to-end drivers (e2e.mjs, steps.mjs): how it is launched, and the pages'
// errors collected, so that a run fails when any page throws or logs one.

import { chromium } from "playwright-core";

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
export async function newWatchedPage(browser, name, problems) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 640 }, locale: "en-GB" });
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
