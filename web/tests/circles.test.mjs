// The peer-circle format (src/circle-format.js, docs/e2ee.md section 20) under Node's test runner and
// WebCrypto: epochs for mixed suites, posts by a device or a pseudonym key, and every refusal by its code.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { concat, sha256, toHex, utf8 } from "../src/bytes.js";
import {
  epochStatementBytes,
  newEpoch,
  openEpoch,
  openPost,
  parseEpochStatement,
  parsePostHeader,
  postContent,
  postHeaderBytes,
  sealPost,
  signPseudonymBinding,
} from "../src/circle-format.js";
import { generateDeviceKeys, sign, verifySignature } from "../src/e2ee.js";

const circleId = crypto.randomUUID();
const device = async (suite) => ({ deviceId: crypto.randomUUID(), keys: await generateDeviceKeys(suite) });
const recipientsOf = (...devices) =>
  new Map(devices.map((d) => [d.deviceId, { suite: d.keys.suite, kemPublic: d.keys.kemPublic }]));

const [nurse, physician, outsider] = await Promise.all([device("xwing"), device("x25519"), device("x25519")]);
const sealed = await newEpoch({ circleId, epoch: 1, author: nurse, recipients: recipientsOf(nurse, physician) });

const openFor = (reader, changes = {}) => openEpoch({
  statementRaw: sealed.statement,
  signature: sealed.signature,
  wrap: sealed.wraps.get(reader.deviceId),
  keys: reader.keys,
  deviceId: reader.deviceId,
  authorSigningPublic: nurse.keys.signingPublic,
  circleId,
  epoch: 1,
  ...changes,
});

describe("circle epochs", () => {
  it("wrap one key for every member device, in each device's suite, under the author's signature", async () => {
    const statement = parseEpochStatement(sealed.statement);
    assert.equal(statement.kind, "rotate");
    assert.deepEqual(Object.keys(statement.wraps).sort(), [nurse.deviceId, physician.deviceId].sort());
    assert.equal(statement.wraps[physician.deviceId].suite, "x25519");
    assert.equal(sealed.wraps.get(nurse.deviceId).length, 1168);
    assert.equal(sealed.wraps.get(physician.deviceId).length, 80);
    for (const reader of [nurse, physician]) {
      assert.deepEqual((await openFor(reader)).epochKey, sealed.epochKey);
    }
  });

  it("write the statement in canonical form, which the strict parser reads back", () => {
    const statement = parseEpochStatement(sealed.statement);
    assert.deepEqual(epochStatementBytes(statement), sealed.statement);
    const spaced = utf8(new TextDecoder().decode(sealed.statement).replace(":", ": "));
    assert.throws(() => parseEpochStatement(spaced), { code: "invalid_epoch_statement" });
  });

  it("refuse another circle or epoch, a device not listed, a forged signature or a swapped wrap", async () => {
    await assert.rejects(openFor(physician, { epoch: 2 }), { code: "context_mismatch" });
    await assert.rejects(openFor(physician, { circleId: crypto.randomUUID() }), { code: "context_mismatch" });
    await assert.rejects(openFor(outsider, { wrap: sealed.wraps.get(physician.deviceId) }),
      { code: "wrap_set_mismatch" });
    await assert.rejects(openFor(physician, { authorSigningPublic: physician.keys.signingPublic }),
      { code: "invalid_signature" });
    await assert.rejects(openFor(physician, { wrap: sealed.wraps.get(nurse.deviceId) }), { code: "wrap_length" });
    const other = sealed.wraps.get(nurse.deviceId).slice();
    other[0] ^= 1;
    await assert.rejects(openFor(nurse, { wrap: other }), { code: "wrap_hash_mismatch" });
  });

  it("refuse a wrap that does not carry the committed key", async () => {
    // A statement honestly signed over a wrap of another key: HPKE opens, the commitment does not match.
    const other = await newEpoch({ circleId, epoch: 1, author: nurse, recipients: recipientsOf(physician) });
    const statement = parseEpochStatement(sealed.statement);
    const wraps = { [physician.deviceId]: { sha256: toHex(await sha256(other.wraps.get(physician.deviceId))),
      suite: "x25519" } };
    const forged = epochStatementBytes({ ...statement, wraps });
    const signature = await sign(nurse.keys, concat(utf8("confrere/circle/v1/epoch\0"), forged));
    await assert.rejects(openFor(physician, { statementRaw: forged, signature,
      wrap: other.wraps.get(physician.deviceId) }), { code: "epoch_key_commitment_mismatch" });
  });

  it("grant an existing epoch to a new device with the same key commitment", async () => {
    const granted = await newEpoch({ circleId, epoch: 1, author: nurse, recipients: recipientsOf(outsider),
      kind: "grant", epochKey: sealed.epochKey });
    assert.equal(parseEpochStatement(granted.statement).keyCommitment,
      parseEpochStatement(sealed.statement).keyCommitment);
    const { epochKey } = await openEpoch({ statementRaw: granted.statement, signature: granted.signature,
      wrap: granted.wraps.get(outsider.deviceId), keys: outsider.keys, deviceId: outsider.deviceId,
      authorSigningPublic: nurse.keys.signingPublic, circleId, epoch: 1 });
    assert.deepEqual(epochKey, sealed.epochKey);
  });
});

describe("circle posts", async () => {
  const postId = crypto.randomUUID();
  const header = { author: nurse.deviceId, authorKind: "device", circleId, epoch: 1, kind: "post",
    objectId: postId, parentId: postId };
  const served = { circleId, objectId: postId, kind: "post", parentId: postId, epoch: 1 };
  const text = "Night shift: a patient's family refuses the transfer. How do you handle it?";
  const post = await sealPost(sealed.epochKey, header, postContent(text, "A refused transfer"),
    nurse.keys.signingKey);
  const open = (changes = {}) => openPost({ epochKey: sealed.epochKey, headerRaw: post.header,
    manifestRaw: post.manifest, signature: post.signature, ciphertext: post.ciphertext,
    authorSigningPublic: nurse.keys.signingPublic, served, ...changes });

  it("are sealed once and open with the epoch key for any member", async () => {
    const { plaintext, header: opened } = await open();
    assert.deepEqual(JSON.parse(new TextDecoder().decode(plaintext)), { body: text, title: "A refused transfer" });
    assert.equal(opened.authorKind, "device");
  });

  it("refuse being served elsewhere, a wrong key or author, and any tampering", async () => {
    await assert.rejects(open({ served: { ...served, epoch: 2 } }), { code: "context_mismatch" });
    await assert.rejects(open({ served: { ...served, objectId: crypto.randomUUID() } }), { code: "context_mismatch" });
    await assert.rejects(open({ authorSigningPublic: physician.keys.signingPublic }), { code: "invalid_signature" });
    const flipped = post.ciphertext.slice();
    flipped[20] ^= 1;
    await assert.rejects(open({ ciphertext: flipped }), { code: "ciphertext_hash_mismatch" });
    const removed = await newEpoch({ circleId, epoch: 2, author: nurse, recipients: recipientsOf(nurse) });
    await assert.rejects(open({ epochKey: removed.epochKey }), { code: "decryption_failed" });
  });

  it("refuse a reply posing as a post, and a post whose parent is another", () => {
    const reply = { ...header, kind: "reply" };
    assert.throws(() => parsePostHeader(postHeaderBytes(reply)), { code: "invalid_post_header" });
    const orphan = { ...header, parentId: crypto.randomUUID() };
    assert.throws(() => parsePostHeader(postHeaderBytes(orphan)), { code: "invalid_post_header" });
  });

  it("may be signed by a pseudonym key that the device binds for the server", async () => {
    const pseudonym = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pseudonym.publicKey));
    const keyId = crypto.randomUUID();
    const replyId = crypto.randomUUID();
    const replyHeader = { author: keyId, authorKind: "pseudonym", circleId, epoch: 1, kind: "reply",
      objectId: replyId, parentId: postId };
    const reply = await sealPost(sealed.epochKey, replyHeader, postContent("Same here last month."),
      pseudonym.privateKey);
    const { header: opened } = await openPost({ epochKey: sealed.epochKey, headerRaw: reply.header,
      manifestRaw: reply.manifest, signature: reply.signature, ciphertext: reply.ciphertext,
      authorSigningPublic: publicKey, served: { circleId, objectId: replyId, kind: "reply", parentId: postId,
        epoch: 1 } });
    assert.equal(opened.author, keyId);
    const { binding, signature } = await signPseudonymBinding(physician.keys, { circleId,
      deviceId: physician.deviceId, pseudonymId: crypto.randomUUID(), publicKey });
    await verifySignature(physician.keys.signingPublic, signature,
      concat(utf8("confrere/circle/v1/pseudonym\0"), binding));
  });
});
