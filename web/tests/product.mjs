// The product tour in Chromium, for tests/test_web_product.py: a physician registers, waits to be verified,
// registers this browser with a key backup, asks a question (through a too-large photo, a lost connection
// and an expired session, losing nothing typed), reads the Python specialist's report in the list and the
// case, prints it, restores the keys in a second browser, turns on TOTP; in French and English, at 390 px,
// by keyboard, with axe-core on every screen, and /docs without the internet. Events as in e2e.mjs.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { axeViolations, launchChromium, newWatchedPage } from "./browser.mjs";

const config = JSON.parse(process.env.CONFRERE_E2E);
const { url, physician, texts, photo, screenshots } = config;

const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function exchange(event, data = {}) {
  process.stdout.write(`@@e2e ${JSON.stringify({ event, ...data })}\n`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`the driver went away after ${event}`);
  return JSON.parse(value);
}

const problems = [];
const violations = [];
const audited = [];

// axe-core on the screen as it is: serious and critical violations fail the run.
async function audit(page, screen) {
  violations.push(...(await axeViolations(page)).map((text) => `${screen}: ${text}`));
  audited.push(screen);
}

async function screen(page, name) {
  await audit(page, name);
  if (screenshots) await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

const heading = (page, name) => page.getByRole("heading", { level: 1, name }).waitFor();
const notice = (page, code) => page.locator(`#notice[data-code="${code}"]`).waitFor();

async function logIn(page, password = physician.password) {
  await heading(page, "Log in");
  await page.getByLabel("E-mail").fill(physician.email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

const browser = await launchChromium();
try {
  // -- Registration, in the browser's language first (French), then switched to English.
  const doctor = await newWatchedPage(browser, "physician", problems, { locale: "fr-FR" });
  await doctor.goto(`${url}/app/`);
  await heading(doctor, "Connexion");
  await screen(doctor, "login-fr");
  await doctor.getByLabel("Langue").selectOption("en");
  await heading(doctor, "Log in");
  await screen(doctor, "login");
  await doctor.getByRole("link", { name: "No account yet? Register" }).click();
  await heading(doctor, "Create your account");
  await doctor.getByLabel("Name as colleagues will see it").fill(physician.name);
  await doctor.getByLabel("Professional e-mail").fill(physician.email);
  await doctor.getByLabel("Password").fill(physician.password);
  await doctor.getByLabel("Number").fill(physician.rpps.slice(0, 10) + String((Number(physician.rpps[10]) + 1) % 10));
  await doctor.locator("#id-check.invalid").waitFor();
  await doctor.getByLabel("Number").fill(physician.rpps);
  await doctor.locator("#id-check.valid").waitFor();
  await screen(doctor, "register");
  await doctor.getByRole("button", { name: "Register" }).click();
  await heading(doctor, "Registration received");
  assert.match(await doctor.locator("main").textContent(), new RegExp(physician.rpps));
  await screen(doctor, "pending");
  await exchange("registered");

  // -- First login: this browser registers with a key backup.
  await doctor.getByRole("link", { name: "Go to log in" }).click();
  await logIn(doctor);
  await heading(doctor, "Register this browser");
  await doctor.getByLabel("Key backup passphrase").fill(physician.passphrase);
  await doctor.getByLabel("Passphrase again").fill(physician.passphrase);
  await screen(doctor, "register-device");
  await doctor.getByRole("button", { name: "Create keys and register" }).click();
  await heading(doctor, "My cases");

  // -- A new case, through a photo over the limit, a lost connection and an expired session.
  await doctor.getByRole("link", { name: "New case" }).click();
  await heading(doctor, "New case");
  await doctor.getByLabel("Specialty").selectOption("dermatology");
  await doctor.getByLabel("Priority").selectOption("urgent");
  await doctor.getByLabel("Patient age (years)").fill("58");
  await doctor.getByLabel("Patient sex").selectOption("male");
  await doctor.getByLabel("Clinical question").fill(texts.question);
  await doctor.getByLabel(/patient consented/).check();
  // Made in the page: 25 MiB through the DevTools protocol would take longer than the whole run.
  await doctor.locator("input[name=photos]").evaluate((input) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(25 * 1024 * 1024 + 1)], "huge.png", { type: "image/png" }));
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
  await doctor.getByRole("button", { name: "Encrypt and send" }).click();
  await notice(doctor, "photo_too_large");
  assert.match(await doctor.locator("#notice").textContent(), /huge\.png/);
  await doctor.getByLabel("Photos").setInputFiles(photo);
  await screen(doctor, "new-case");

  await doctor.context().setOffline(true);
  await doctor.getByRole("button", { name: "Encrypt and send" }).click();
  await notice(doctor, "network_error");
  await doctor.context().setOffline(false);
  assert.equal(await doctor.getByLabel("Clinical question").inputValue(), texts.question);

  await doctor.evaluate(() => sessionStorage.setItem("confrere.tokens", JSON.stringify({
    access_token: "stale", refresh_token: "ended-refresh-token-ended-refresh-token",
  })));
  await doctor.getByRole("button", { name: "Encrypt and send" }).click();
  await heading(doctor, "Log in");
  assert.match(await doctor.locator(".lead").textContent(), /what you typed is kept/);
  await logIn(doctor);
  await heading(doctor, "New case");
  assert.equal(await doctor.getByLabel("Clinical question").inputValue(), texts.question);
  assert.equal(await doctor.getByLabel("Patient age (years)").inputValue(), "58");
  assert.equal(await doctor.locator("input[name=photos]").evaluate((input) => input.files.length), 1);
  await doctor.getByRole("button", { name: "Encrypt and send" }).click();
  const created = doctor.locator("section.case[data-status=open]");
  await created.waitFor();
  const caseId = await created.getAttribute("data-case-id");
  await exchange("created", { case_id: caseId });

  // -- The list: a summary decrypted here, names and specialty names; in English and French.
  await doctor.goto(`${url}/app/#/cases`);
  const row = doctor.locator(`tr[data-case-id="${caseId}"]`);
  await row.waitFor();
  const cells = await row.locator("td").allTextContents();
  assert.deepEqual(cells.slice(0, 6), [
    texts.question.split("\n")[0], "58 y, man", "1", "Dermatology", "Urgent", "Answered",
  ]);
  await screen(doctor, "cases");
  await doctor.getByLabel("Language").selectOption("fr");
  await heading(doctor, "Mes demandes");
  assert.deepEqual((await row.locator("td").allTextContents()).slice(1, 6),
    ["homme, 58 ans", "1", "Dermatologie", "Urgente", "Répondue"]);
  await screen(doctor, "cases-fr");
  await doctor.getByLabel("Langue").selectOption("en");
  await heading(doctor, "My cases");

  // -- At 390 px wide: nothing wider than the screen.
  await doctor.setViewportSize({ width: 390, height: 844 });
  await row.waitFor();
  assert.ok(await doctor.evaluate(() => document.documentElement.scrollWidth <= 390), "the list overflows 390 px");
  await screen(doctor, "cases-phone");

  // -- The case: names, the verified author in words, the device behind a click, the photo full size.
  await row.locator("a").click();
  const answered = doctor.locator(`section.case[data-case-id="${caseId}"][data-status=answered]`);
  await answered.waitFor();
  assert.ok(await doctor.evaluate(() => document.documentElement.scrollWidth <= 390), "the case overflows 390 px");
  await doctor.setViewportSize({ width: 1024, height: 640 });
  const meta = await doctor.locator("dl.meta").textContent();
  assert.match(meta, /Requested byYou/);
  assert.match(meta, new RegExp(`Specialist${texts.specialist_name}`));
  assert.equal(await doctor.locator(".message[data-kind=report] .text").textContent(), texts.report);
  const signed = doctor.locator(".message[data-kind=report] .verify.ok");
  assert.match(await signed.locator("span").first().textContent(), new RegExp(`Signed by ${texts.specialist_name}'s device`));
  await signed.getByText("Device details").click();
  await signed.getByRole("link", { name: `Safety number of ${texts.specialist_name}` }).waitFor();
  const [popup] = await Promise.all([doctor.waitForEvent("popup"), doctor.locator(".photo > a").click()]);
  assert.ok(popup.url().startsWith("blob:"), "the photo opens full size");
  await popup.close();
  await screen(doctor, "case-report");
  await doctor.emulateMedia({ media: "print" });
  assert.ok(await doctor.locator(".print-only").isVisible(), "the printed report has its header");
  assert.match(await doctor.locator(".print-only").textContent(), new RegExp(`Report by ${texts.specialist_name}`));
  assert.equal(await doctor.locator("form.actions").isVisible(), false);
  if (screenshots) await doctor.screenshot({ path: join(screenshots, "report-print.png"), fullPage: true });
  await doctor.emulateMedia({ media: "screen" });

  // -- A second browser: log in by keyboard alone, restore the keys (a wrong passphrase first).
  const laptop = await newWatchedPage(browser, "second browser", problems);
  await laptop.goto(`${url}/app/`);
  await heading(laptop, "Log in");
  for (let i = 0; i < 20 && !(await laptop.evaluate(() => document.activeElement?.name === "email")); i++) {
    await laptop.keyboard.press("Tab");
  }
  await laptop.keyboard.type(physician.email);
  await laptop.keyboard.press("Tab");
  await laptop.keyboard.type(physician.password);
  await laptop.keyboard.press("Enter");
  await heading(laptop, "Register this browser");
  await laptop.getByLabel("Backup passphrase", { exact: true }).fill("not the passphrase at all");
  await laptop.getByRole("button", { name: "Restore keys" }).click();
  await notice(laptop, "wrong_passphrase");
  await screen(laptop, "restore");
  await laptop.getByLabel("Backup passphrase", { exact: true }).fill(physician.passphrase);
  await laptop.getByRole("button", { name: "Restore keys" }).click();
  await heading(laptop, "My cases");
  await laptop.locator(`tr[data-case-id="${caseId}"] a`, { hasText: texts.question.split("\n")[0] }).waitFor();

  // -- Two-factor authentication, the QR code drawn in the page.
  await doctor.getByRole("link", { name: "Security" }).click();
  await heading(doctor, "Security");
  await doctor.getByRole("button", { name: "Set up two-factor authentication" }).click();
  await doctor.locator("svg.qr").waitFor();
  await screen(doctor, "totp");
  const { code } = await exchange("totp", { secret: await doctor.locator("code.secret").textContent() });
  await doctor.getByLabel("Six-digit code").fill(code);
  await doctor.getByRole("button", { name: "Turn on two-factor authentication" }).click();
  await doctor.locator(".totp .done").waitFor();
  await screen(doctor, "security");

  // -- /docs from this server's files only.
  const elsewhere = [];
  doctor.on("request", (request) => {
    if (!request.url().startsWith(url) && !request.url().startsWith("data:")) elsewhere.push(request.url());
  });
  await doctor.goto(`${url}/docs`);
  await doctor.locator(".swagger-ui .info .title", { hasText: "Confrere API" }).waitFor();
  await doctor.locator(".opblock-tag", { hasText: "cases" }).first().waitFor();
  assert.deepEqual(elsewhere, [], "/docs loads from elsewhere");
  if (screenshots) await doctor.screenshot({ path: join(screenshots, "api-docs.png") });

  assert.equal(audited.length, 13, `axe-core ran on ${audited}`);
  assert.deepEqual(violations, [], "accessibility violations");
  assert.deepEqual(problems, [], "errors in the pages");
  await exchange("done");
} finally {
  await browser.close();
}
