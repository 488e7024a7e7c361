// The circle format both ways with the reference implementation (app/crypto/circles.py), for
// tests/test_web_circles.py: reads from stdin what Python sealed (an epoch for each suite's device and a
// post under it), opens it, then seals an epoch and a post of its own for the same devices and prints them.

import { readFileSync } from "node:fs";

import { b64, fromUtf8, unb64 } from "../src/bytes.js";
import { newEpoch, openEpoch, openPost, postContent, sealPost, signPseudonymBinding } from "../src/circle-format.js";
import { deviceKeys } from "./seeded-keys.mjs";

const given = JSON.parse(readFileSync(0, "utf8"));
const { circle_id: circleId } = given;
const devices = {};
for (const [suite, d] of Object.entries(given.devices)) {
  devices[suite] = { deviceId: d.device_id, keys: await deviceKeys(suite, d.signing_seed, d.kem_seed, d.kem_public) };
}

const opened = {};
for (const [suite, reader] of Object.entries(devices)) {
  const { epochKey } = await openEpoch({
    statementRaw: unb64(given.epoch.statement),
    signature: unb64(given.epoch.signature),
    wrap: unb64(given.epoch.wraps[reader.deviceId]),
    keys: reader.keys,
    deviceId: reader.deviceId,
    authorSigningPublic: unb64(given.author_signing_public),
    circleId,
    epoch: 1,
  });
  const post = given.post;
  const { plaintext } = await openPost({
    epochKey,
    headerRaw: unb64(post.header),
    manifestRaw: unb64(post.manifest),
    signature: unb64(post.signature),
    ciphertext: unb64(post.ciphertext),
    authorSigningPublic: unb64(given.author_signing_public),
    served: { circleId, objectId: post.id, kind: "post", parentId: post.id, epoch: 1 },
  });
  opened[suite] = JSON.parse(fromUtf8(plaintext));
}

const author = devices.xwing;
const recipients = new Map(Object.values(devices).map((d) => [d.deviceId, { suite: d.keys.suite,
  kemPublic: d.keys.kemPublic }]));
const epoch = await newEpoch({ circleId, epoch: 2, author, recipients });
const replyId = crypto.randomUUID();
const reply = await sealPost(epoch.epochKey, { author: author.deviceId, authorKind: "device", circleId, epoch: 2,
  kind: "reply", objectId: replyId, parentId: given.post.id }, postContent(given.reply_text), author.keys.signingKey);
// A second reply under a pseudonym, whose key the author's device binds for the server.
const pseudonym = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
const pseudonymPublic = new Uint8Array(await crypto.subtle.exportKey("raw", pseudonym.publicKey));
const keyId = crypto.randomUUID();
const binding = await signPseudonymBinding(author.keys, { circleId, deviceId: author.deviceId,
  pseudonymId: given.pseudonym_id, publicKey: pseudonymPublic });
const hiddenId = crypto.randomUUID();
const masked = await sealPost(epoch.epochKey, { author: keyId, authorKind: "pseudonym", circleId, epoch: 2,
  kind: "reply", objectId: hiddenId, parentId: given.post.id }, postContent(given.reply_text), pseudonym.privateKey);
const sealedOut = (id, sealed) => ({ id, header: b64(sealed.header), manifest: b64(sealed.manifest),
  signature: b64(sealed.signature), ciphertext: b64(sealed.ciphertext) });
process.stdout.write(JSON.stringify({
  opened,
  epoch: { statement: b64(epoch.statement), signature: b64(epoch.signature),
    wraps: Object.fromEntries([...epoch.wraps].map(([id, wrap]) => [id, b64(wrap)])) },
  reply: sealedOut(replyId, reply),
  pseudonymous: { ...sealedOut(hiddenId, masked), key_id: keyId, public_key: b64(pseudonymPublic),
    binding: b64(binding.binding), binding_signature: b64(binding.signature) },
}));
