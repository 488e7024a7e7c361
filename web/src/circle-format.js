// The peer-circle format in the browser (docs/e2ee.md section 20; mirrors app/crypto/circles.py): an epoch key
// per circle epoch, wrapped with HPKE for each member device under a signed epoch statement; posts sealed once
// with a key derived from the epoch key and signed by a device or a pseudonym key. No I/O here.

import { concat, equalBytes, lengthPrefixed, randomBytes, sha256, toHex, utf8 } from "./bytes.js";
import { canonicalBytes, parseCanonical, requireFields, requireMatch, requireSuite, SHA256_HEX, UUID }
  from "./canonical.js";
import { ENVELOPE_LENGTH, hmacSha256, hpkeUnwrap, hpkeWrap, sign, verifySignature } from "./e2ee.js";
import { E2EEError } from "./errors.js";

export const CIRCLE_FORMAT = 1;
const AEAD = "aes-256-gcm";
const EPOCH_KEY_LABEL = "confrere/circle/v1/epoch-key";
const COMMITMENT_LABEL = "confrere/circle/v1/epoch-commitment";
const EPOCH_SIGNATURE_LABEL = utf8("confrere/circle/v1/epoch\0");
const POST_KEY_LABEL = utf8("confrere/circle/v1/post-key");
const POST_SIGNATURE_LABEL = utf8("confrere/circle/v1/post\0");
const PSEUDONYM_SIGNATURE_LABEL = utf8("confrere/circle/v1/pseudonym\0");
const STATEMENT_KINDS = ["rotate", "grant"];
const POST_KINDS = ["post", "reply"];
const AUTHOR_KINDS = ["device", "pseudonym"];
const MIN_CIPHERTEXT_SIZE = 12 + 16;

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));

function requireVersion(obj, code) {
  if (obj.v !== CIRCLE_FORMAT) throw new E2EEError(code, "unsupported circle format version");
}

function requireEpoch(value, code) {
  if (!Number.isSafeInteger(value) || value < 1) throw new E2EEError(code, "an epoch is an integer from 1");
}

// The canonical parser already refuses floats, negatives and constants; here, the document's own rules.
function strict(raw, fields, code) {
  let obj;
  try {
    obj = parseCanonical(raw);
  } catch (error) {
    throw new E2EEError(code, error.message);
  }
  requireFields(obj, fields, code);
  requireVersion(obj, code);
  return obj;
}

// -- epoch key, commitment and wraps ---------------------------------------------------------------------

const epochText = (epoch) => utf8(String(epoch));

export function epochKeyInfo(suite, circleId, epoch, recipientDeviceId) {
  return lengthPrefixed(EPOCH_KEY_LABEL, utf8(suite), utf8(circleId), epochText(epoch), utf8(recipientDeviceId));
}

export function epochCommitment(epochKey, circleId, epoch) {
  return hmacSha256(epochKey, lengthPrefixed(COMMITMENT_LABEL, utf8(circleId), epochText(epoch)));
}

// -- the epoch statement -----------------------------------------------------------------------------------

const STATEMENT_FIELDS = ["author_device_id", "circle_id", "epoch", "key_commitment", "kind", "v", "wraps"];

/** `wraps` maps device id to `{ sha256, suite }` (hex SHA-256 of the wrap, the recipient's suite). */
export function epochStatementBytes({ authorDeviceId, circleId, epoch, keyCommitment, kind, wraps }) {
  return canonicalBytes({
    author_device_id: authorDeviceId,
    circle_id: circleId,
    epoch,
    key_commitment: keyCommitment,
    kind,
    v: CIRCLE_FORMAT,
    wraps,
  });
}

export function parseEpochStatement(raw) {
  const code = "invalid_epoch_statement";
  const obj = strict(raw, STATEMENT_FIELDS, code);
  requireMatch(obj.author_device_id, UUID, "author_device_id", code);
  requireMatch(obj.circle_id, UUID, "circle_id", code);
  requireEpoch(obj.epoch, code);
  requireMatch(obj.key_commitment, SHA256_HEX, "key_commitment", code);
  if (!STATEMENT_KINDS.includes(obj.kind)) throw new E2EEError(code, "unknown statement kind");
  const listed = obj.wraps;
  if (listed === null || typeof listed !== "object" || Array.isArray(listed) || !Object.keys(listed).length) {
    throw new E2EEError(code, "wraps must be a non-empty object");
  }
  const wraps = {};
  for (const [deviceId, entry] of Object.entries(listed)) {
    requireMatch(deviceId, UUID, "wrap device id", code);
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new E2EEError(code, "a wrap entry is an object");
    }
    requireFields(entry, ["sha256", "suite"], code);
    requireMatch(entry.sha256, SHA256_HEX, "wrap hash", code);
    requireSuite(entry.suite);
    wraps[deviceId] = { sha256: entry.sha256, suite: entry.suite };
  }
  return {
    authorDeviceId: obj.author_device_id,
    circleId: obj.circle_id,
    epoch: obj.epoch,
    keyCommitment: obj.key_commitment,
    kind: obj.kind,
    wraps,
  };
}

/**
 * A new epoch (`rotate`) or more wraps of an existing one (`grant`, with that epoch's key): the key wrapped
 * for every recipient device (a Map of device id to `{ suite, kemPublic }`, already proved by the directory),
 * the statement listing them, signed by the author device. The epoch key is returned for the author's use.
 */
export async function newEpoch({ circleId, epoch, author, recipients, kind = "rotate", epochKey = null }) {
  const key = epochKey ?? randomBytes(32);
  const wraps = new Map();
  const listed = {};
  for (const [deviceId, recipient] of recipients) {
    const wrap = await hpkeWrap(recipient, epochKeyInfo(recipient.suite, circleId, epoch, deviceId), key);
    wraps.set(deviceId, wrap);
    listed[deviceId] = { sha256: toHex(await sha256(wrap)), suite: recipient.suite };
  }
  const statement = epochStatementBytes({
    authorDeviceId: author.deviceId,
    circleId,
    epoch,
    keyCommitment: toHex(await epochCommitment(key, circleId, epoch)),
    kind,
    wraps: listed,
  });
  const signature = await sign(author.keys, concat(EPOCH_SIGNATURE_LABEL, statement));
  return { statement, signature, wraps, epochKey: key };
}

/**
 * The epoch key from this device's wrap, after the checks of section 20 in order: strict statement, its
 * signature by the author device's key (proved by the directory), the circle and epoch it was served as,
 * this device's wrap listed, its suite, length and hash, HPKE, the key commitment (and a grant's against
 * its epoch's rotation, `rotationCommitment`, when known).
 */
export async function openEpoch({ statementRaw, signature, wrap, keys, deviceId, authorSigningPublic,
  circleId, epoch, rotationCommitment = null }) {
  const statement = parseEpochStatement(statementRaw);
  await verifySignature(authorSigningPublic, signature, concat(EPOCH_SIGNATURE_LABEL, statementRaw));
  if (statement.circleId !== circleId || statement.epoch !== epoch) {
    throw new E2EEError("context_mismatch", "the epoch statement is for another circle or epoch");
  }
  const listed = statement.wraps[deviceId];
  if (!listed) throw new E2EEError("wrap_set_mismatch", "the statement lists no wrap for this device");
  if (listed.suite !== keys.suite) {
    throw new E2EEError("suite_mismatch", "the wrap is labelled with another suite than this device's");
  }
  if (wrap.length !== ENVELOPE_LENGTH[keys.suite]) {
    throw new E2EEError("wrap_length", `a ${keys.suite} wrap is ${ENVELOPE_LENGTH[keys.suite]} bytes`);
  }
  if (listed.sha256 !== toHex(await sha256(wrap))) {
    throw new E2EEError("wrap_hash_mismatch", "the wrap differs from its signed hash");
  }
  const epochKey = await hpkeUnwrap(keys, wrap, epochKeyInfo(keys.suite, circleId, epoch, deviceId));
  const commitment = await epochCommitment(epochKey, circleId, epoch);
  if (epochKey.length !== 32 || !equalBytes(commitment, fromHex(statement.keyCommitment))) {
    throw new E2EEError("epoch_key_commitment_mismatch", "the epoch key does not match the signed commitment");
  }
  // A grant re-wraps its epoch's key: when the rotation's statement is known, the commitments must agree.
  if (rotationCommitment !== null && rotationCommitment !== statement.keyCommitment) {
    throw new E2EEError("epoch_key_commitment_mismatch", "the grant commits to another key than its epoch");
  }
  return { epochKey, statement };
}

// -- posts -------------------------------------------------------------------------------------------------

const HEADER_FIELDS = ["aead", "author", "author_kind", "circle_id", "epoch", "kind", "object_id", "parent_id",
  "v"];

export function postHeaderBytes({ author, authorKind, circleId, epoch, kind, objectId, parentId }) {
  return canonicalBytes({
    aead: AEAD,
    author,
    author_kind: authorKind,
    circle_id: circleId,
    epoch,
    kind,
    object_id: objectId,
    parent_id: parentId,
    v: CIRCLE_FORMAT,
  });
}

export function parsePostHeader(raw) {
  const code = "invalid_post_header";
  const obj = strict(raw, HEADER_FIELDS, code);
  if (obj.aead !== AEAD) throw new E2EEError(code, "unknown content AEAD");
  for (const name of ["author", "circle_id", "object_id", "parent_id"]) requireMatch(obj[name], UUID, name, code);
  if (!AUTHOR_KINDS.includes(obj.author_kind)) throw new E2EEError(code, "unknown author kind");
  if (!POST_KINDS.includes(obj.kind)) throw new E2EEError(code, "unknown post kind");
  requireEpoch(obj.epoch, code);
  // A post is its own parent; a reply with its own id as parent would pose as a post.
  if ((obj.kind === "post") !== (obj.parent_id === obj.object_id)) {
    throw new E2EEError(code, "parent_id equals object_id exactly for a post");
  }
  return {
    author: obj.author,
    authorKind: obj.author_kind,
    circleId: obj.circle_id,
    epoch: obj.epoch,
    kind: obj.kind,
    objectId: obj.object_id,
    parentId: obj.parent_id,
  };
}

export function postManifestBytes({ ciphertextSha256, ciphertextSize, headerSha256 }) {
  return canonicalBytes({
    ciphertext_sha256: ciphertextSha256,
    ciphertext_size: ciphertextSize,
    header_sha256: headerSha256,
    v: CIRCLE_FORMAT,
  });
}

export function parsePostManifest(raw) {
  const code = "invalid_post_manifest";
  const obj = strict(raw, ["ciphertext_sha256", "ciphertext_size", "header_sha256", "v"], code);
  requireMatch(obj.ciphertext_sha256, SHA256_HEX, "ciphertext_sha256", code);
  requireMatch(obj.header_sha256, SHA256_HEX, "header_sha256", code);
  if (!Number.isSafeInteger(obj.ciphertext_size) || obj.ciphertext_size < MIN_CIPHERTEXT_SIZE) {
    throw new E2EEError(code, "ciphertext is shorter than nonce and tag");
  }
  return { ciphertextSha256: obj.ciphertext_sha256, ciphertextSize: obj.ciphertext_size,
    headerSha256: obj.header_sha256 };
}

/** HKDF-SHA256 of the epoch key, bound to the post's header: one key per post, never stored. */
export async function derivePostKey(epochKey, headerSha256) {
  const ikm = await crypto.subtle.importKey("raw", epochKey, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: concat(POST_KEY_LABEL, headerSha256) },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

async function postKey(epochKey, headerSha256, usage) {
  const raw = await derivePostKey(epochKey, headerSha256);
  try {
    return await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
  } finally {
    raw.fill(0);
  }
}

/** The plaintext of a post or reply: UTF-8 JSON `{"body", "title"?}` (a title on top-level posts only). */
export function postContent(body, title = "") {
  return utf8(JSON.stringify(title ? { body, title } : { body }));
}

/**
 * One encryption per post, whatever the circle's size; `signingKey` is a device's or a pseudonym's. The
 * nonce is random; the known-answer test alone gives one.
 */
export async function sealPost(epochKey, header, plaintext, signingKey, nonce = randomBytes(12)) {
  const headerRaw = postHeaderBytes(header);
  const headerSha256 = await sha256(headerRaw);
  const body = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: headerRaw },
    await postKey(epochKey, headerSha256, "encrypt"),
    plaintext,
  );
  const ciphertext = concat(nonce, new Uint8Array(body));
  const manifest = postManifestBytes({
    ciphertextSha256: toHex(await sha256(ciphertext)),
    ciphertextSize: ciphertext.length,
    headerSha256: toHex(headerSha256),
  });
  const signature = await sign({ signingKey }, concat(POST_SIGNATURE_LABEL, manifest));
  return { header: headerRaw, manifest, signature, ciphertext };
}

/**
 * Verifies and decrypts a post served as `served` (`{ circleId, objectId, kind, parentId, epoch }`, which
 * its signed header must name): strict header and manifest, the author key's signature, the manifest naming
 * this header and ciphertext, then AES-GCM with the header as associated data.
 */
export async function openPost({ epochKey, headerRaw, manifestRaw, signature, ciphertext, authorSigningPublic,
  served }) {
  const header = parsePostHeader(headerRaw);
  const manifest = parsePostManifest(manifestRaw);
  await verifySignature(authorSigningPublic, signature, concat(POST_SIGNATURE_LABEL, manifestRaw));
  const headerSha256 = await sha256(headerRaw);
  if (manifest.headerSha256 !== toHex(headerSha256)) {
    throw new E2EEError("header_mismatch", "manifest is for another header");
  }
  for (const name of ["circleId", "objectId", "kind", "parentId", "epoch"]) {
    if (header[name] !== served[name]) {
      throw new E2EEError("context_mismatch", "the post was signed for another circle, place or epoch");
    }
  }
  if (manifest.ciphertextSize !== ciphertext.length) {
    throw new E2EEError("ciphertext_size_mismatch", "ciphertext size differs from the manifest");
  }
  if (manifest.ciphertextSha256 !== toHex(await sha256(ciphertext))) {
    throw new E2EEError("ciphertext_hash_mismatch", "ciphertext hash differs from the manifest");
  }
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: ciphertext.subarray(0, 12), additionalData: headerRaw },
      await postKey(epochKey, headerSha256, "decrypt"),
      ciphertext.subarray(12),
    );
    return { plaintext: new Uint8Array(plaintext), header };
  } catch {
    throw new E2EEError("decryption_failed", "the post does not decrypt with the epoch key");
  }
}

// -- pseudonym keys ------------------------------------------------------------------------------------------

export function pseudonymBindingBytes({ circleId, deviceId, pseudonymId, publicKeySha256 }) {
  return canonicalBytes({
    circle_id: circleId,
    device_id: deviceId,
    pseudonym_id: pseudonymId,
    public_key_sha256: publicKeySha256,
    v: CIRCLE_FORMAT,
  });
}

/** The device vouches for the pseudonym key (for the server and the audit log; members never see it). */
export async function signPseudonymBinding(deviceKeys, { circleId, deviceId, pseudonymId, publicKey }) {
  const binding = pseudonymBindingBytes({ circleId, deviceId, pseudonymId,
    publicKeySha256: toHex(await sha256(publicKey)) });
  return { binding, signature: await sign(deviceKeys, concat(PSEUDONYM_SIGNATURE_LABEL, binding)) };
}
