// The catalogue (src/locales/) and the inline professional id check, under Node's test runner.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import en from "../src/locales/en.js";
import fr from "../src/locales/fr.js";
import circlesEn from "../src/locales/circles.en.js";
import circlesFr from "../src/locales/circles.fr.js";
import { professionalIdValid } from "../src/professional-ids.js";

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("the catalogue", () => {
  it("has every string in both languages (French also names the specialties)", () => {
    const french = Object.keys(fr).filter((key) => !key.startsWith("specialty."));
    assert.deepEqual(french.sort(), Object.keys(en).sort());
  });
  it("takes the circle screens' strings without shadowing any other", () => {
    for (const [whole, circles, file] of [[en, circlesEn, "en.js"], [fr, circlesFr, "fr.js"]]) {
      const source = readFileSync(new URL(`../src/locales/${file}`, import.meta.url), "utf8");
      for (const key of Object.keys(circles)) {
        assert.equal(whole[key], circles[key], key);
        assert.equal(source.includes(`"${key}":`), false, `${key} is also in ${file}`);
      }
    }
  });
  it("fills the same placeholders in both languages", () => {
    for (const key of Object.keys(en)) assert.deepEqual(placeholders(fr[key]), placeholders(en[key]), key);
  });
});

describe("professional ids", () => {
  it("accepts valid RPPS, ADELI and NPI numbers and refuses a wrong check digit or length", () => {
    assert.ok(professionalIdValid("rpps", "10000000009"));
    assert.ok(professionalIdValid("npi", "1234567893"));
    assert.equal(professionalIdValid("rpps", "10000000008"), false);
    assert.equal(professionalIdValid("npi", "1234567890"), false);
    assert.equal(professionalIdValid("rpps", "1234567893"), false);
    assert.equal(professionalIdValid("npi", "12345678 3"), false);
    // ADELI: 9 digits, Luhn over the number itself (as app/schemas/professional_ids.py).
    assert.ok(professionalIdValid("adeli", "123456782"));
    assert.equal(professionalIdValid("adeli", "123456789"), false);
    assert.equal(professionalIdValid("adeli", "12345678"), false);
    assert.equal(professionalIdValid("adeli", "1234567820"), false);
  });
});

describe("refusals in the page's language", () => {
  it("shows a directory refusal's detail from the catalogue, never the English message", async () => {
    // i18n.js keeps the chosen language in localStorage and sets <html lang>: a stand-in for both.
    globalThis.localStorage = { getItem: () => "en", setItem: () => {} };
    globalThis.document = { documentElement: {} };
    const { setLanguage, t } = await import("../src/i18n.js");
    const { describe: describeError, E2EEError } = await import("../src/errors.js");
    setLanguage("fr");
    const details = Object.keys(en).filter((key) => key.startsWith("directory.why."));
    assert.ok(details.length >= 10);
    for (const detail of details) {
      const english = "device 0a1b2c3d: the English reason the console shows";
      const refusal = new E2EEError("device_not_in_directory", english,
        { detail, device: "0a1b2c3d", size: 12, last: 14 });
      const shown = describeError(refusal);
      assert.ok(shown.startsWith(fr["error.device_not_in_directory"]), shown);
      assert.ok(shown.includes(t(detail, { device: "0a1b2c3d", size: 12, last: 14 })), shown);
      assert.ok(!shown.includes("English") && !shown.includes("{"), shown);
    }
    const changed = new E2EEError("safety_number_changed", "the devices of verified colleague changed",
      { user: "u", pinned: "11111 22222", now: "33333 44444", detail: null });
    assert.equal(describeError(changed), fr["error.safety_number_changed"]
      .replace("{pinned}", "11111 22222").replace("{now}", "33333 44444"));
    setLanguage("en");
  });
});
