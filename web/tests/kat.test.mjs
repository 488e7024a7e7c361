// The known-answer vectors of docs/e2ee.md section 17 (tests/crypto/e2ee_kat.json for version 1, which the
// client reads, and tests/crypto/e2ee_kat_v2.json for version 2, which it writes) against the web client's
// crypto modules, run by Node's test runner on Node's WebCrypto (`npm test`, and from pytest).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { keysFromSecrets } from "../src/backup.js";
import { concat, sha256, toHex, utf8 } from "../src/bytes.js";
import { headerBytes, manifestBytes, parseHeader, parseManifest } from "../src/canonical.js";
import { caseContent, parseContent } from "../src/content.js";
import {
  envelopeInfo,
  keyCommitment,
  openKemChallenge,
  openSealed,
  registrationMessage,
  rewrap,
  sign,
  signShare,
} from "../src/e2ee.js";
import { bytes, deviceKeys, importPrivate } from "./seeded-keys.mjs";

const vectors = (name) => JSON.parse(readFileSync(new URL(`../../tests/crypto/${name}`, import.meta.url)));
const kat = vectors("e2ee_kat.json");
const katV2 = vectors("e2ee_kat_v2.json");
const input = kat.inputs;
const served = { caseId: input.case_id, kind: "case", objectId: input.case_id };
// The vector's sealed case as openSealed takes it, served where it belongs.
const sealedCase = (v) => ({
  headerRaw: utf8(v.header),
  ciphertext: bytes(v.ciphertext),
  manifestRaw: utf8(v.manifest),
  signature: bytes(v.manifest_signature),
  authorSigningPublic: bytes(v.author_signing_public),
  served,
});

for (const [suite, v] of Object.entries(kat.suites)) {
  describe(`suite ${suite}`, async () => {
    // The author only signs; its KEM key is unused by the vectors.
    const author = { signingKey: await importPrivate("Ed25519", input.author_signing_seed, ["sign"]) };
    const reader = await deviceKeys(suite, input.reader_signing_seed, input.reader_kem_seed,
      v.reader_kem_public);
    const newcomer = await deviceKeys(suite, input.newcomer_signing_seed, input.newcomer_kem_seed,
      v.newcomer_kem_public);
    const header = {
      v: 1,
      suite,
      caseId: input.case_id,
      kind: "case",
      objectId: input.case_id,
      authorDeviceId: input.author_device_id,
    };
    const sealed = sealedCase(v);

    it("derives the KEM public keys from their seeds", () => {
      assert.equal(toHex(reader.kemPublic), v.reader_kem_public);
      assert.equal(toHex(newcomer.kemPublic), v.newcomer_kem_public);
    });

    it("reads the version 1 header, envelope info, key commitment and manifest", async () => {
      assert.deepEqual(parseHeader(utf8(v.header)), header);
      const headerSha256 = await sha256(utf8(v.header));
      assert.equal(toHex(headerSha256), v.header_sha256);
      const info = envelopeInfo(suite, input.case_id, headerSha256, input.reader_device_id);
      assert.equal(toHex(info), v.envelope_info_reader);
      assert.equal(toHex(await keyCommitment(bytes(input.content_key), headerSha256)), v.key_commitment);
      const manifest = parseManifest(utf8(v.manifest));
      assert.equal(manifest.v, 1);
      assert.deepEqual(manifest.envelopes[input.reader_device_id],
        { sha256: toHex(await sha256(bytes(v.wrapped_key_reader))), suite: null });
      const signed = concat(utf8("confrere/v1/manifest\0"), utf8(v.manifest));
      assert.equal(toHex(await sign(author, signed)), v.manifest_signature);
    });

    it("opens the reader's envelope and the newcomer's re-shared one", async () => {
      const plaintext = utf8(input.plaintext);
      const forReader = await openSealed({ ...sealed, wrappedKey: bytes(v.wrapped_key_reader),
        deviceId: input.reader_device_id, keys: reader });
      assert.deepEqual(forReader.plaintext, plaintext);
      const forNewcomer = await openSealed({ ...sealed, wrappedKey: bytes(v.wrapped_key_newcomer),
        deviceId: input.newcomer_device_id, keys: newcomer, reshared: true });
      assert.deepEqual(forNewcomer.plaintext, plaintext);
    });

    it("re-shares as the reader: the vector's statement and signature, an envelope the newcomer opens", async () => {
      const entry = { objectId: input.case_id, headerSha256: v.header_sha256, deviceId: input.newcomer_device_id,
        envelope: bytes(v.wrapped_key_newcomer) };
      const { statement, signature } = await signShare(input.case_id, input.reader_device_id, [entry], reader);
      assert.equal(new TextDecoder().decode(statement), v.share_statement);
      assert.equal(toHex(signature), v.share_signature);
      const fromReader = { ...sealed, wrappedKey: bytes(v.wrapped_key_reader), deviceId: input.reader_device_id,
        keys: reader };
      const other = suite === "x25519" ? "xwing" : "x25519";
      const [shared, ...rest] = await rewrap(fromReader, new Map([
        [input.newcomer_device_id, { suite, kemPublic: newcomer.kemPublic }],
        // A version 1 object is re-shared only within its suite: a device of the other suite is left out.
        [input.user_id, { suite: other, kemPublic: bytes(kat.suites[other].newcomer_kem_public) }],
      ]));
      assert.deepEqual(rest, []);
      assert.equal(shared.headerSha256, v.header_sha256);
      const opened = await openSealed({ ...sealed, wrappedKey: shared.envelope, deviceId: input.newcomer_device_id,
        keys: newcomer, reshared: true });
      assert.deepEqual(opened.plaintext, utf8(input.plaintext));
      await assert.rejects(rewrap({ ...fromReader, served: { ...served, kind: "report" } }, new Map()),
        { code: "context_mismatch" });
      await assert.rejects(rewrap({ ...fromReader, deviceId: input.newcomer_device_id }, new Map()),
        { code: "decryption_failed" });
    });

    it("refuses tampering with the code of docs/e2ee.md section 14", async () => {
      const open = (changes) =>
        openSealed({ ...sealed, wrappedKey: bytes(v.wrapped_key_reader), deviceId: input.reader_device_id,
          keys: reader, ...changes });
      const flipped = (data, at) => Uint8Array.from(data, (b, i) => (i === at ? b ^ 1 : b));
      const refusals = [
        [{ ciphertext: flipped(sealed.ciphertext, 20) }, "ciphertext_hash_mismatch"],
        [{ signature: flipped(sealed.signature, 0) }, "invalid_signature"],
        [{ headerRaw: utf8(v.header.replace(":1}", ": 1}")) }, "not_canonical"],
        [{ headerRaw: utf8(v.header.replace('"case"', '"report"')) }, "invalid_header"],
        [{ wrappedKey: flipped(bytes(v.wrapped_key_reader), 40) }, "envelope_set_mismatch"],
        [{ wrappedKey: flipped(bytes(v.wrapped_key_reader), 40), reshared: true }, "decryption_failed"],
        [{ deviceId: input.newcomer_device_id, reshared: true }, "decryption_failed"],
        [{ wrappedKey: bytes(v.wrapped_key_newcomer), keys: newcomer, reshared: true }, "decryption_failed"],
        [{ served: { ...served, caseId: input.user_id } }, "context_mismatch"],
      ];
      for (const [changes, code] of refusals) await assert.rejects(open(changes), { code });
    });
  });
}

describe("format version 2: one case for an x25519 and an X-Wing device", async () => {
  const v = katV2.values;
  const author = { signingKey: await importPrivate("Ed25519", input.author_signing_seed, ["sign"]) };
  // As in tests/crypto/kat_v2.py: classic = the version 1 reader's seeds, hybrid = the newcomer's.
  const x25519Reader = kat.suites.x25519.reader_kem_public;
  const devices = {
    classic: { id: input.reader_device_id, keys: await deviceKeys("x25519", input.reader_signing_seed,
      input.reader_kem_seed, x25519Reader) },
    hybrid: { id: input.newcomer_device_id, keys: await deviceKeys("xwing", input.newcomer_signing_seed,
      input.newcomer_kem_seed) },
  };
  const sealed = sealedCase(v);
  const open = (name, changes = {}) => openSealed({ ...sealed, wrappedKey: bytes(v[`wrapped_key_${name}`]),
    deviceId: devices[name].id, keys: devices[name].keys, ...changes });

  it("writes the version 2 header, envelope infos, manifest and signature", async () => {
    const header = { caseId: input.case_id, kind: "case", objectId: input.case_id,
      authorDeviceId: input.author_device_id };
    assert.equal(new TextDecoder().decode(headerBytes(header)), v.header);
    assert.deepEqual(parseHeader(utf8(v.header)), { v: 2, suite: null, ...header });
    const headerSha256 = await sha256(utf8(v.header));
    assert.equal(toHex(headerSha256), v.header_sha256);
    assert.equal(toHex(await keyCommitment(bytes(input.content_key), headerSha256)), v.key_commitment);
    const envelopes = {};
    for (const [name, { id, keys }] of Object.entries(devices)) {
      assert.equal(toHex(envelopeInfo(keys.suite, input.case_id, headerSha256, id)), v[`envelope_info_${name}`]);
      envelopes[id] = { sha256: toHex(await sha256(bytes(v[`wrapped_key_${name}`]))), suite: keys.suite };
    }
    const manifest = manifestBytes({
      headerSha256: v.header_sha256,
      ciphertextSha256: toHex(await sha256(bytes(v.ciphertext))),
      ciphertextSize: v.ciphertext.length / 2,
      envelopes,
      keyCommitment: v.key_commitment,
    });
    assert.equal(new TextDecoder().decode(manifest), v.manifest);
    const signed = concat(utf8("confrere/v1/manifest\0"), manifest);
    assert.equal(toHex(await sign(author, signed)), v.manifest_signature);
  });

  it("opens the one object on both devices", async () => {
    for (const name of Object.keys(devices)) {
      assert.deepEqual((await open(name)).plaintext, utf8(input.plaintext));
    }
  });

  it("re-shares a version 2 object across suites: the x25519 device wraps for the X-Wing one", async () => {
    const [shared] = await rewrap({ ...sealed, wrappedKey: bytes(v.wrapped_key_classic), deviceId: devices.classic.id,
      keys: devices.classic.keys }, new Map([[devices.hybrid.id, { suite: "xwing",
      kemPublic: devices.hybrid.keys.kemPublic }]]));
    assert.equal(shared.envelope.length, 1168);
    assert.deepEqual((await open("hybrid", { wrappedKey: shared.envelope, reshared: true })).plaintext,
      utf8(input.plaintext));
  });

  it("refuses a relabelled suite, a moved object and a swapped device", async () => {
    const relabelled = v.manifest.replace('"suite":"xwing"', '"suite":"x25519"');
    await assert.rejects(open("hybrid", { manifestRaw: utf8(relabelled) }), { code: "invalid_signature" });
    await assert.rejects(open("classic", { served: { ...served, kind: "report" } }), { code: "context_mismatch" });
    await assert.rejects(open("classic", { served: { ...served, caseId: input.user_id } }),
      { code: "context_mismatch" });
    const hybridEnvelope = bytes(v.wrapped_key_hybrid);
    await assert.rejects(open("classic", { wrappedKey: hybridEnvelope, reshared: true }), { code: "envelope_length" });
    await assert.rejects(open("hybrid", { keys: devices.classic.keys }), { code: "suite_mismatch" });
  });

  it("opens the registration KEM challenge and signs the version 2 registration message", async () => {
    const challenge = bytes(input.challenge);
    for (const [name, { keys }] of Object.entries(devices)) {
      const secret = await openKemChallenge(keys, bytes(v[`kem_challenge_${name}`]), challenge, input.user_id);
      assert.equal(toHex(secret), katV2.inputs.kem_secret);
      const message = registrationMessage(challenge, input.user_id, keys.suite, bytes(v[`signing_public_${name}`]),
        keys.kemPublic, secret);
      assert.equal(toHex(message), v[`registration_message_${name}`]);
      assert.equal(toHex(await sign(keys, message)), v[`registration_signature_${name}`]);
    }
    const stranger = devices.classic.keys;
    await assert.rejects(openKemChallenge(stranger, bytes(v.kem_challenge_classic), challenge, input.case_id),
      { code: "decryption_failed" });
  });

  it("registers keys restored from a key backup's secrets as it does fresh ones", async () => {
    const challenge = bytes(input.challenge);
    const seeds = { classic: ["x25519", input.reader_signing_seed, input.reader_kem_seed],
      hybrid: ["xwing", input.newcomer_signing_seed, input.newcomer_kem_seed] };
    for (const [name, [suite, signingSeed, kemSeed]] of Object.entries(seeds)) {
      const keys = await keysFromSecrets(suite, bytes(signingSeed), bytes(kemSeed));
      assert.equal(toHex(keys.signingPublic), v[`signing_public_${name}`]);
      const secret = await openKemChallenge(keys, bytes(v[`kem_challenge_${name}`]), challenge, input.user_id);
      const message = registrationMessage(challenge, input.user_id, suite, keys.signingPublic, keys.kemPublic,
        secret);
      assert.equal(toHex(message), v[`registration_message_${name}`]);
      assert.equal(toHex(await sign(keys, message)), v[`registration_signature_${name}`]);
    }
  });
});

describe("sealed content (docs/schemas/sealed-content.schema.json)", () => {
  it("parses what matches its kind's schema and keeps the rest as raw text", () => {
    const id = input.case_id;
    const good = utf8(JSON.stringify({ v: 1, question: "q", attachments: [{ id, name: "a", media_type: "b", size: 1 }] }));
    assert.equal(parseContent("case", good).content.question, "q");
    assert.equal(parseContent("report", utf8('{"v":1,"text":"t","later":1}')).content.text, "t");
    const patient = { age_years: 58, sex: "male" };
    assert.deepEqual(parseContent("case", caseContent("q", [], patient)).content.patient, patient);
    assert.equal(new TextDecoder().decode(caseContent("q", [])).includes("patient"), false);
    for (const [kind, text] of [["case", "plain"], ["case", '{"v":"1","question":"q"}'], ["message", '{"v":1}'],
      ["case", '{"v":1,"question":"q","patient":{"age_years":"58"}}'],
      ["case", '{"v":1,"question":"q","patient":{"sex":"unknown"}}'],
      ["attachment", '{"v":1,"text":"t"}']]) {
      assert.deepEqual(parseContent(kind, utf8(text)), { content: null, rawText: text });
    }
    assert.equal(parseContent("message", Uint8Array.of(0xff, 0x41)).rawText, "\ufffdA");
  });
});
