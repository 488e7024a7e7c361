// Drives the web client in Debian's Chromium through every screen, as a physician and a specialist,
// against a live server. The pytest driver (tests/test_web_e2e.py) plays the reference Python client in
// between: this script prints `@@e2e {"event": ...}` lines and waits for a JSON line on stdin before
// going on, so that each side reads what the other one wrote. Any failure exits non-zero.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { axeViolations, launchChromium, newWatchedPage } from "./browser.mjs";

const config = JSON.parse(process.env.CONFRERE_E2E);
const { url, suite, specialty, physician, specialist, texts, photo, screenshots } = config;

const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function exchange(event, data = {}) {
  process.stdout.write(`@@e2e ${JSON.stringify({ event, ...data })}\n`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`the driver went away after ${event}`);
  return JSON.parse(value);
}

const problems = [];

async function openPage(browser, name) {
  const page = await newWatchedPage(browser, name, problems);
  await page.goto(`${url}/app/`);
  return page;
}

// Every screen shot is also checked with axe-core: serious and critical violations fail the run.
const violations = [];

async function shot(page, name) {
  violations.push(...(await axeViolations(page)).map((text) => `${name}: ${text}`));
  if (screenshots) await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

async function notice(page, code) {
  await page.locator(`#notice[data-code="${code}"]`).waitFor();
}

async function heading(page, text) {
  await page.getByRole("heading", { level: 1, name: text }).waitFor();
}

async function logIn(page, account, screenshot) {
  await heading(page, "Log in");
  await page.getByLabel("E-mail").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  if (account.totp) {
    // Without the code first: the server answers totp_required, which the page must put into words.
    await page.getByRole("button", { name: "Log in" }).click();
    await notice(page, "totp_required");
    await page.getByLabel("Authenticator code").fill(account.totp);
  }
  if (screenshot) await shot(page, screenshot);
  await page.getByRole("button", { name: "Log in" }).click();
}

async function registerDevice(page, screenshot) {
  await heading(page, "Register this browser");
  await page.locator(`input[name=suite][value=${suite}]`).check();
  if (screenshot) await shot(page, screenshot);
  await page.getByRole("button", { name: "Create keys and register" }).click();
  await heading(page, "My cases");
}

// A full page load each time: the device keys come back from IndexedDB, and nothing stale stays shown.
async function openCase(page, caseId) {
  await page.goto("about:blank");
  await page.goto(`${url}/app/#/case/${caseId}`);
  await page.locator(`section.case[data-case-id="${caseId}"]`).waitFor();
}

// Everything on the page opened and verified, and each photo decoded to a real image.
async function checkVerified(page, question) {
  assert.equal(await page.locator(".content .question").textContent(), question);
  assert.equal(await page.locator(".verify.refused").count(), 0, "an item failed verification");
  const widths = await page.locator(".photo img").evaluateAll((images) =>
    Promise.all(images.map((img) => img.decode().then(() => img.naturalWidth))),
  );
  assert.equal(widths.length, 1);
  assert.ok(widths[0] > 0, "the decrypted photo does not render");
}

async function threadText(page, kind) {
  return page.locator(`.message[data-kind=${kind}] .text`).allTextContents();
}

// Writes `text` and presses a move's button; waits for the new status (or the new message).
async function act(page, button, text, status) {
  if (text !== null) await page.getByLabel("Your message").fill(text);
  await page.getByRole("button", { name: button }).click();
  if (status) await page.locator(`section.case[data-status=${status}]`).waitFor();
  else await page.locator(".message .text", { hasText: text }).waitFor();
}

const browser = await launchChromium();
try {
  const doctor = await openPage(browser, "physician");
  const expert = await openPage(browser, "specialist");

  // A wrong password is refused in words, from the problem's code.
  await doctor.getByLabel("E-mail").fill(physician.email);
  await doctor.getByLabel("Password").fill("not the password");
  await doctor.getByRole("button", { name: "Log in" }).click();
  await notice(doctor, "invalid_credentials");

  await logIn(doctor, physician, "login");
  await registerDevice(doctor, "register-device");
  await logIn(expert, specialist);
  await registerDevice(expert);
  const { case_id: pythonCase } = await exchange("registered");

  // The physician's case, sealed in the browser.
  await doctor.getByRole("link", { name: "New case" }).click();
  await heading(doctor, "New case");
  await doctor.getByLabel("Specialty").selectOption(specialty);
  await doctor.getByLabel("Clinical question").fill(texts.browser_question);
  await doctor.getByLabel("Photos").setInputFiles(photo);
  await doctor.getByLabel(/patient consented/).check();
  await shot(doctor, "new-case");
  await doctor.getByRole("button", { name: "Encrypt and send" }).click();
  const created = doctor.locator("section.case[data-status=open]");
  await created.waitFor();
  const browserCase = await created.getAttribute("data-case-id");
  await checkVerified(doctor, texts.browser_question);
  await exchange("created", { case_id: browserCase });

  // The specialist finds both cases in the queue and takes the Python physician's.
  await expert.getByRole("link", { name: "Queue" }).click();
  await heading(expert, "Specialty queue");
  for (const id of [pythonCase, browserCase]) await expert.locator(`tr[data-case-id="${id}"]`).waitFor();
  await shot(expert, "queue");
  await expert.locator(`tr[data-case-id="${pythonCase}"] a`).click();
  await expert.locator("section.case[data-status=open]").waitFor();
  await checkVerified(expert, texts.python_question);
  await act(expert, "Claim this case", null, "claimed");
  await act(expert, "Send message", texts.browser_message, null);
  await shot(expert, "case-specialist");
  await act(expert, "Request information", texts.browser_info_request, "awaiting_info");
  await exchange("info_requested");

  // Python answered the request on its case and asked for information on the browser's case.
  await openCase(expert, pythonCase);
  assert.deepEqual(await threadText(expert, "info_response"), [texts.python_info_response]);
  await act(expert, "Send report and answer", texts.browser_report, "answered");
  await openCase(doctor, browserCase);
  assert.deepEqual(await threadText(doctor, "info_request"), [texts.python_info_request]);
  await act(doctor, "Provide information", texts.browser_info_response, "claimed");
  await exchange("answered");

  // The Python specialist's report, read and verified in the browser; then the physician closes.
  await openCase(doctor, browserCase);
  assert.deepEqual(await threadText(doctor, "report"), [texts.python_report]);
  assert.equal(await doctor.locator(".verify.refused").count(), 0);
  await shot(doctor, "report");
  await act(doctor, "Close case", null, "closed");
  // A stale access token: the client renews the session with its refresh token and carries on.
  await expert.evaluate(() => {
    const tokens = JSON.parse(sessionStorage.getItem("confrere.tokens"));
    sessionStorage.setItem("confrere.tokens", JSON.stringify({ ...tokens, access_token: "stale" }));
  });
  await openCase(expert, pythonCase);
  await expert.locator("section.case[data-status=closed]").waitFor();

  assert.deepEqual(violations, [], "accessibility violations");
  assert.deepEqual(problems, [], "errors in the pages");
  await exchange("done");
} finally {
  await browser.close();
}
