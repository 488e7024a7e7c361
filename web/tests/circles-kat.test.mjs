// The peer-circle known-answer vectors of docs/e2ee.md section 20 (tests/crypto/e2ee_kat_circles.json, made
// by tests/crypto/kat_circles.py) against src/circle-format.js, under Node's test runner and WebCrypto: the
// epoch key's wrap infos, commitment, statement and signature, both suites' wraps, the post and the
// pseudonymous reply (header, post key, ciphertext, manifest, signature) and the pseudonym binding.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { concat, sha256, toHex, utf8 } from "../src/bytes.js";
import {
  derivePostKey,
  epochCommitment,
  epochKeyInfo,
  epochStatementBytes,
  openEpoch,
  openPost,
  parseEpochStatement,
  postHeaderBytes,
  sealPost,
  signPseudonymBinding,
} from "../src/circle-format.js";
import { sign } from "../src/e2ee.js";
import { bytes, deviceKeys, importPrivate } from "./seeded-keys.mjs";

const vectors = (name) => JSON.parse(readFileSync(new URL(`../../tests/crypto/${name}`, import.meta.url)));
const base = vectors("e2ee_kat.json").inputs;
const { inputs, values: v } = vectors("e2ee_kat_circles.json");
const circleId = inputs.circle_id;
const epoch = Number(inputs.epoch);
const epochKey = bytes(inputs.epoch_key);

// As in tests/crypto/kat_v2.py: classic = the version 1 reader's seeds (x25519), hybrid = the newcomer's.
const devices = {
  classic: { id: base.reader_device_id, keys: await deviceKeys("x25519", base.reader_signing_seed,
    base.reader_kem_seed, vectors("e2ee_kat.json").suites.x25519.reader_kem_public) },
  hybrid: { id: base.newcomer_device_id, keys: await deviceKeys("xwing", base.newcomer_signing_seed,
    base.newcomer_kem_seed) },
};
const author = { deviceId: base.author_device_id,
  keys: { signingKey: await importPrivate("Ed25519", base.author_signing_seed, ["sign"]) } };
const pseudonymKey = await importPrivate("Ed25519", inputs.pseudonym_seed, ["sign"]);
const text = (raw) => new TextDecoder().decode(raw);

const postFields = {
  post: { author: base.author_device_id, authorKind: "device", kind: "post", objectId: inputs.post_id },
  reply: { author: inputs.pseudonym_key_id, authorKind: "pseudonym", kind: "reply", objectId: inputs.reply_id },
};
const headerOf = (name) => ({ ...postFields[name], circleId, epoch, parentId: inputs.post_id });
const servedAs = (name) => ({ circleId, objectId: postFields[name].objectId, kind: postFields[name].kind,
  parentId: inputs.post_id, epoch });
const signerOf = { post: author.keys.signingKey, reply: pseudonymKey };
const publicOf = { post: bytes(v.author_signing_public), reply: bytes(v.pseudonym_public_key) };

describe("circle epoch vectors", () => {
  it("write the wrap infos, the commitment, the statement and its signature", async () => {
    for (const [name, { id, keys }] of Object.entries(devices)) {
      assert.equal(toHex(epochKeyInfo(keys.suite, circleId, epoch, id)), v[`wrap_info_${name}`]);
    }
    assert.equal(toHex(await epochCommitment(epochKey, circleId, epoch)), v.epoch_key_commitment);
    const statement = parseEpochStatement(utf8(v.epoch_statement));
    assert.equal(text(epochStatementBytes(statement)), v.epoch_statement);
    for (const [name, { id }] of Object.entries(devices)) {
      assert.equal(statement.wraps[id].sha256, toHex(await sha256(bytes(v[`wrap_${name}`]))));
    }
    const signed = concat(utf8("confrere/circle/v1/epoch\0"), utf8(v.epoch_statement));
    assert.equal(toHex(await sign(author.keys, signed)), v.epoch_signature);
  });

  it("open each suite's wrap to the epoch key, and refuse it served for another epoch", async () => {
    const open = (name, changes = {}) => openEpoch({ statementRaw: utf8(v.epoch_statement),
      signature: bytes(v.epoch_signature), wrap: bytes(v[`wrap_${name}`]), keys: devices[name].keys,
      deviceId: devices[name].id, authorSigningPublic: bytes(v.author_signing_public), circleId, epoch,
      ...changes });
    for (const name of Object.keys(devices)) assert.deepEqual((await open(name)).epochKey, epochKey);
    await assert.rejects(open("classic", { epoch: epoch + 1 }), { code: "context_mismatch" });
    await assert.rejects(open("hybrid", { rotationCommitment: "00".repeat(32) }),
      { code: "epoch_key_commitment_mismatch" });
  });
});

describe("circle post vectors", () => {
  for (const name of ["post", "reply"]) {
    it(`seal the ${name} byte for byte: header, post key, ciphertext, manifest, signature`, async () => {
      const header = headerOf(name);
      assert.equal(text(postHeaderBytes(header)), v[`${name}_header`]);
      const headerSha256 = await sha256(utf8(v[`${name}_header`]));
      assert.equal(toHex(await derivePostKey(epochKey, headerSha256)), v[`${name}_key`]);
      const sealed = await sealPost(epochKey, header, utf8(inputs[`${name}_plaintext`]), signerOf[name],
        bytes(inputs[`${name}_nonce`]));
      assert.equal(toHex(sealed.ciphertext), v[`${name}_ciphertext`]);
      assert.equal(text(sealed.manifest), v[`${name}_manifest`]);
      assert.equal(toHex(sealed.signature), v[`${name}_signature`]);
    });

    it(`open the ${name} where it was served, and refuse it elsewhere`, async () => {
      const open = (changes = {}) => openPost({ epochKey, headerRaw: utf8(v[`${name}_header`]),
        manifestRaw: utf8(v[`${name}_manifest`]), signature: bytes(v[`${name}_signature`]),
        ciphertext: bytes(v[`${name}_ciphertext`]), authorSigningPublic: publicOf[name], served: servedAs(name),
        ...changes });
      assert.equal(text((await open()).plaintext), inputs[`${name}_plaintext`]);
      await assert.rejects(open({ served: { ...servedAs(name), epoch: epoch + 1 } }), { code: "context_mismatch" });
      await assert.rejects(open({ authorSigningPublic: publicOf[name === "post" ? "reply" : "post"] }),
        { code: "invalid_signature" });
    });
  }

  it("bind the pseudonym key to the classic device, signature included", async () => {
    const { binding, signature } = await signPseudonymBinding(devices.classic.keys, { circleId,
      deviceId: devices.classic.id, pseudonymId: inputs.pseudonym_id, publicKey: bytes(v.pseudonym_public_key) });
    assert.equal(text(binding), v.pseudonym_binding);
    assert.equal(toHex(signature), v.pseudonym_binding_signature);
  });
});
