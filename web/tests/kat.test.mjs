// The known-answer vectors of docs/e2ee.md section 17 (tests/crypto/e2ee_kat.json) against the web
// client's crypto modules, run by Node's test runner on Node's WebCrypto (`npm test`, and from pytest).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { concat, sha256, toHex, utf8 } from "../src/bytes.js";
import { headerBytes, manifestBytes, parseHeader } from "../src/canonical.js";
import {
  envelopeInfo,
  keyCommitment,
  openSealed,
  registrationMessage,
  sign,
  xwingFromSeed,
} from "../src/e2ee.js";

const kat = JSON.parse(readFileSync(new URL("../../tests/crypto/e2ee_kat.json", import.meta.url)));
const input = kat.inputs;
const bytes = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

// RFC 8410 PKCS#8 wrappers: the only way WebCrypto imports a raw Ed25519 or X25519 private key.
const PKCS8 = { Ed25519: "302e020100300506032b657004220420", X25519: "302e020100300506032b656e04220420" };
const importPrivate = (name, seed, usages) =>
  crypto.subtle.importKey("pkcs8", bytes(PKCS8[name] + seed), { name }, false, usages);

async function deviceKeys(suite, signingSeed, kemSeed, kemPublicHex) {
  const keys = { suite, signingKey: await importPrivate("Ed25519", signingSeed, ["sign"]) };
  if (suite === "xwing") return { ...keys, ...(await xwingFromSeed(bytes(kemSeed))) };
  const publicKey = await crypto.subtle.importKey("raw", bytes(kemPublicHex), { name: "X25519" }, true, []);
  const privateKey = await importPrivate("X25519", kemSeed, ["deriveBits"]);
  return { ...keys, kemPublic: bytes(kemPublicHex), kemPrivate: { privateKey, publicKey } };
}

for (const [suite, v] of Object.entries(kat.suites)) {
  describe(`suite ${suite}`, async () => {
    // The author only signs; its KEM key is unused by the vectors.
    const author = { signingKey: await importPrivate("Ed25519", input.author_signing_seed, ["sign"]) };
    const reader = await deviceKeys(suite, input.reader_signing_seed, input.reader_kem_seed,
      v.reader_kem_public);
    const newcomer = await deviceKeys(suite, input.newcomer_signing_seed, input.newcomer_kem_seed,
      v.newcomer_kem_public);
    const header = {
      suite,
      caseId: input.case_id,
      kind: "case",
      objectId: input.case_id,
      authorDeviceId: input.author_device_id,
    };
    const sealed = {
      headerRaw: utf8(v.header),
      ciphertext: bytes(v.ciphertext),
      manifestRaw: utf8(v.manifest),
      signature: bytes(v.manifest_signature),
      authorSigningPublic: bytes(v.author_signing_public),
    };

    it("derives the KEM public keys from their seeds", () => {
      assert.equal(toHex(reader.kemPublic), v.reader_kem_public);
      assert.equal(toHex(newcomer.kemPublic), v.newcomer_kem_public);
    });

    it("builds and signs the device registration message", async () => {
      const message = registrationMessage(bytes(input.challenge), input.user_id, suite,
        bytes(v.reader_signing_public), reader.kemPublic);
      assert.equal(toHex(message), v.registration_message);
      assert.equal(toHex(await sign(reader, message)), v.registration_signature);
    });

    it("writes the canonical header, envelope info, key commitment and manifest", async () => {
      assert.equal(new TextDecoder().decode(headerBytes(header)), v.header);
      assert.deepEqual(parseHeader(utf8(v.header)), header);
      const headerSha256 = await sha256(utf8(v.header));
      assert.equal(toHex(headerSha256), v.header_sha256);
      const info = envelopeInfo(suite, input.case_id, headerSha256, input.reader_device_id);
      assert.equal(toHex(info), v.envelope_info_reader);
      assert.equal(toHex(await keyCommitment(bytes(input.content_key), headerSha256)), v.key_commitment);
      const manifest = manifestBytes({
        headerSha256: v.header_sha256,
        ciphertextSha256: v.ciphertext_sha256,
        ciphertextSize: v.ciphertext.length / 2,
        envelopes: { [input.reader_device_id]: toHex(await sha256(bytes(v.wrapped_key_reader))) },
        keyCommitment: v.key_commitment,
      });
      assert.equal(new TextDecoder().decode(manifest), v.manifest);
      const signed = concat(utf8("confrere/v1/manifest\0"), manifest);
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
      ];
      for (const [changes, code] of refusals) await assert.rejects(open(changes), { code });
    });
  });
}
