// The Confrere E2EE format in the browser (normative spec: docs/e2ee.md): writes version 2, reads 1 and 2. WebCrypto does
// Ed25519, X25519, AES-256-GCM, HMAC and SHA-256; @hpke/core does RFC 9180 HPKE, and
// @hpke/hybridkem-x-wing the X-Wing KEM, which WebCrypto lacks.

import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { XWing } from "@hpke/hybridkem-x-wing";

import { concat, equalBytes, lengthPrefixed, randomBytes, sha256, toHex, utf8 } from "./bytes.js";
import { headerBytes, manifestBytes, parseHeader, parseManifest, shareStatementBytes } from "./canonical.js";
import { E2EEError } from "./errors.js";

const ENVELOPE_LABEL = "confrere/v1/envelope";
const KEY_COMMITMENT_LABEL = "confrere/v1/key-commitment";
const MANIFEST_LABEL = utf8("confrere/v1/manifest\0");
const SHARE_LABEL = utf8("confrere/v1/share\0");
const REGISTRATION_LABEL = "confrere/v2/device-registration";
const KEM_PROOF_LABEL = "confrere/v2/device-kem-proof";

const KEM_PUBLIC_LENGTH = { x25519: 32, xwing: 1216 };
export const ENVELOPE_LENGTH = { x25519: 80, xwing: 1168 };
const MLKEM768_PUBLIC_LENGTH = 1184;

const HPKE = {
  x25519: new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }),
  xwing: new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }),
};

// -- keys ---------------------------------------------------------------------------------------------

// The signing key and the X25519 KEM key are WebCrypto keys created non-extractable: no script, ours
// included, can read their bytes. X-Wing has no WebCrypto algorithm, so its private key is a 32-byte
// seed held by the JavaScript library (keystore.js encrypts it at rest).
export async function generateDeviceKeys(suite) {
  const signing = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const signingPublic = new Uint8Array(await crypto.subtle.exportKey("raw", signing.publicKey));
  if (suite === "x25519") {
    const kem = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    const kemPublic = new Uint8Array(await crypto.subtle.exportKey("raw", kem.publicKey));
    return { suite, signingKey: signing.privateKey, signingPublic, kemPublic, kemPrivate: kem };
  }
  if (suite === "xwing") {
    const seed = randomBytes(32);
    return { suite, signingKey: signing.privateKey, signingPublic, ...(await xwingFromSeed(seed)) };
  }
  throw new E2EEError("unknown_suite", "unknown E2EE suite");
}

// draft-connolly-cfrg-xwing-kem: the public key is derived from the seed (docs/e2ee.md section 3).
export async function xwingFromSeed(seed) {
  const pair = await HPKE.xwing.kem.generateKeyPairDerand(seed);
  const kemPublic = new Uint8Array(await HPKE.xwing.kem.serializePublicKey(pair.publicKey));
  return { kemPublic, kemPrivate: pair.privateKey, kemSeed: seed };
}

export async function sign(keys, message) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, keys.signingKey, message));
}

// -- public key checks (docs/e2ee.md section 3) ----------------------------------------------------------

const ED25519_P = 2n ** 255n - 19n;
const ED25519_SMALL_ORDER_Y = new Set([
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]);

// Some Ed25519 verifiers accept small-order keys, under which anyone forges a signature with
// probability 1/8; refuse them and non-canonical encodings before verifying.
function checkSigningPublic(raw) {
  if (raw.length !== 32) throw new E2EEError("invalid_key", "Ed25519 public key must be 32 bytes");
  const y = Uint8Array.from(raw);
  y[31] &= 0x7f;
  const value = BigInt(`0x${toHex(y.slice().reverse())}`);
  if (value >= ED25519_P || ED25519_SMALL_ORDER_Y.has(toHex(y))) {
    throw new E2EEError("invalid_key", "Ed25519 public key is non-canonical or of small order");
  }
}

export async function verifySignature(publicRaw, signature, message) {
  checkSigningPublic(publicRaw);
  if (signature.length !== 64) throw new E2EEError("invalid_signature", "signature must be 64 bytes");
  const key = await crypto.subtle.importKey("raw", publicRaw, { name: "Ed25519" }, false, ["verify"]);
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message))) {
    throw new E2EEError("invalid_signature", "signature does not verify");
  }
}

let probeKey;

// WebCrypto refuses an X25519 exchange whose result is all zeros, which is exactly a low-order point.
async function checkX25519Public(raw) {
  probeKey ??= crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const { privateKey } = await probeKey;
  try {
    const key = await crypto.subtle.importKey("raw", raw, { name: "X25519" }, false, []);
    await crypto.subtle.deriveBits({ name: "X25519", public: key }, privateKey, 256);
  } catch {
    throw new E2EEError("invalid_key", "X25519 public key of low order");
  }
}

// FIPS 203 modulus check: every 12-bit coefficient of the encoded vector t is below q = 3329.
function checkMlKemPublic(raw) {
  for (let i = 0; i < 1152; i += 3) {
    const first = raw[i] | ((raw[i + 1] & 0x0f) << 8);
    const second = (raw[i + 1] >> 4) | (raw[i + 2] << 4);
    if (first >= 3329 || second >= 3329) throw new E2EEError("invalid_key", "malformed ML-KEM-768 key");
  }
}

async function checkKemPublic(suite, raw) {
  if (raw.length !== KEM_PUBLIC_LENGTH[suite]) {
    throw new E2EEError("invalid_key", `${suite} KEM public key must be ${KEM_PUBLIC_LENGTH[suite]} bytes`);
  }
  if (suite === "xwing") checkMlKemPublic(raw);
  await checkX25519Public(raw.subarray(raw.length - 32));
}

// -- device registration (section 11) ------------------------------------------------------------------

export function kemProofInfo(challenge, userId, suite, kemPublic) {
  return lengthPrefixed(KEM_PROOF_LABEL, challenge, utf8(userId), utf8(suite), kemPublic);
}

// Opens the secret the server sealed to this device's KEM key: the proof that the device holds it.
export async function openKemChallenge(keys, kemChallenge, challenge, userId) {
  const encLength = kemChallenge.length - 48;
  try {
    const secret = await HPKE[keys.suite].open(
      {
        recipientKey: keys.kemPrivate,
        enc: kemChallenge.slice(0, encLength),
        info: kemProofInfo(challenge, userId, keys.suite, keys.kemPublic),
      },
      kemChallenge.slice(encLength),
    );
    return new Uint8Array(secret);
  } catch {
    throw new E2EEError("decryption_failed", "the KEM challenge does not open with this device's key");
  }
}

export function registrationMessage(challenge, userId, suite, signingPublic, kemPublic, kemProof) {
  return lengthPrefixed(REGISTRATION_LABEL, challenge, utf8(userId), utf8(suite), signingPublic, kemPublic,
    kemProof);
}

// -- sealing (sections 7 to 10) ------------------------------------------------------------------------

export function envelopeInfo(suite, caseId, headerSha256, recipientDeviceId) {
  return lengthPrefixed(ENVELOPE_LABEL, utf8(suite), utf8(caseId), headerSha256, utf8(recipientDeviceId));
}

export async function hmacSha256(keyBytes, message) {
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
}

export function keyCommitment(contentKey, headerSha256) {
  return hmacSha256(contentKey, concat(utf8(KEY_COMMITMENT_LABEL), headerSha256));
}

async function aesKey(contentKey, usage) {
  return crypto.subtle.importKey("raw", contentKey, { name: "AES-GCM" }, false, [usage]);
}

/**
 * HPKE base mode, single shot, empty aad: `secret` sealed to a recipient's KEM key (checked first) in its
 * own suite, as `enc || ct`. Case envelopes and circle epoch-key wraps (section 20) are both made here.
 */
export async function hpkeWrap({ suite, kemPublic }, info, secret) {
  if (!HPKE[suite]) throw new E2EEError("unknown_suite", "unknown E2EE suite");
  await checkKemPublic(suite, kemPublic);
  const recipientPublicKey = await HPKE[suite].kem.deserializePublicKey(kemPublic);
  const { enc, ct } = await HPKE[suite].seal({ recipientPublicKey, info }, secret);
  return concat(new Uint8Array(enc), new Uint8Array(ct));
}

/** Opens what hpkeWrap made for this device (its suite's length checked by the caller). */
export async function hpkeUnwrap(keys, wrapped, info) {
  const encLength = wrapped.length - 48;
  try {
    const opened = await HPKE[keys.suite].open(
      { recipientKey: keys.kemPrivate, enc: wrapped.slice(0, encLength), info },
      wrapped.slice(encLength),
    );
    return new Uint8Array(opened);
  } catch {
    throw new E2EEError("decryption_failed", "the wrapped key does not open for this device and object");
  }
}

// The envelope is in the recipient's own suite, which `info` binds (section 9).
function wrapContentKey(contentKey, header, headerSha256, deviceId, recipient) {
  return hpkeWrap(recipient, envelopeInfo(recipient.suite, header.caseId, headerSha256, deviceId), contentKey);
}

/**
 * Seals a version 2 object: encrypts under a fresh content key, wraps it for every recipient device (a Map
 * of device id to `{ suite, kemPublic }`, suites mixed as they come) and signs the manifest, which names each
 * envelope's suite, with the author device's key.
 */
export async function seal(plaintext, header, recipients, keys) {
  const headerRaw = headerBytes(header);
  const headerSha256 = await sha256(headerRaw);
  const contentKey = randomBytes(32);
  const nonce = randomBytes(12);
  const body = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: headerRaw },
    await aesKey(contentKey, "encrypt"),
    plaintext,
  );
  const ciphertext = concat(nonce, new Uint8Array(body));
  const envelopes = new Map();
  const envelopeHashes = {};
  for (const [deviceId, recipient] of recipients) {
    const envelope = await wrapContentKey(contentKey, header, headerSha256, deviceId, recipient);
    envelopes.set(deviceId, envelope);
    envelopeHashes[deviceId] = { sha256: toHex(await sha256(envelope)), suite: recipient.suite };
  }
  const manifest = manifestBytes({
    headerSha256: toHex(headerSha256),
    ciphertextSha256: toHex(await sha256(ciphertext)),
    ciphertextSize: ciphertext.length,
    envelopes: envelopeHashes,
    keyCommitment: toHex(await keyCommitment(contentKey, headerSha256)),
  });
  contentKey.fill(0);
  const signature = await sign(keys, concat(MANIFEST_LABEL, manifest));
  return { header: headerRaw, ciphertext, envelopes, manifest, signature };
}

// -- opening (section 13, "Recipient device, on open", in that order) ----------------------------------

async function verifyManifest(headerRaw, manifestRaw, signature, authorSigningPublic) {
  const header = parseHeader(headerRaw);
  const manifest = parseManifest(manifestRaw);
  await verifySignature(authorSigningPublic, signature, concat(MANIFEST_LABEL, manifestRaw));
  const headerSha256 = await sha256(headerRaw);
  if (manifest.headerSha256 !== toHex(headerSha256)) {
    throw new E2EEError("header_mismatch", "manifest is for another header");
  }
  if (manifest.v !== header.v) throw new E2EEError("invalid_manifest", "header and manifest versions differ");
  return { header, manifest, headerSha256 };
}

/**
 * A recipient MUST refuse an object whose signed header names another case, kind or object than where the
 * API served it (`served`: `{ caseId, kind, objectId }`), or a genuinely signed object of another case
 * would open inside this one (section 13).
 */
export function checkContext(header, served) {
  if (header.caseId !== served.caseId || header.kind !== served.kind || header.objectId !== served.objectId) {
    throw new E2EEError("context_mismatch", "the object was signed for another case, kind or object");
  }
}

// Opens this device's envelope and checks the content key against the signed commitment (the suite the
// manifest labels, the envelope's length, then HPKE with `info` bound to this device and object).
async function unwrapContentKey({ header, manifest, headerSha256 }, wrappedKey, deviceId, keys) {
  // Version 1: the header's suite; version 2: the manifest's label (none for a re-shared envelope).
  const listed = manifest.envelopes[deviceId];
  const labelled = header.v === 1 ? header.suite : (listed?.suite ?? null);
  if (labelled !== null && labelled !== keys.suite) {
    throw new E2EEError("suite_mismatch", "the envelope is labelled with another suite than this device's");
  }
  if (wrappedKey.length !== ENVELOPE_LENGTH[keys.suite]) {
    const expected = ENVELOPE_LENGTH[keys.suite];
    throw new E2EEError("envelope_length", `a ${keys.suite} envelope is ${expected} bytes`);
  }
  const contentKey = await hpkeUnwrap(keys, wrappedKey, envelopeInfo(keys.suite, header.caseId, headerSha256,
    deviceId));
  const commitment = await keyCommitment(contentKey, headerSha256);
  const expected = Uint8Array.from(manifest.keyCommitment.match(/../g), (h) => parseInt(h, 16));
  if (contentKey.length !== 32 || !equalBytes(commitment, expected)) {
    contentKey.fill(0);
    throw new E2EEError("key_commitment_mismatch", "content key does not match the author's commitment");
  }
  return contentKey;
}

/**
 * Verifies and decrypts one object for this device, served by the API as `served`. A re-shared envelope is
 * absent from the author's manifest; it is accepted (`reshared`) because the signed key commitment still
 * proves it carries the author's key. `authorSigningPublic` must be the key trusted for the header's
 * author_device_id.
 */
export async function openSealed({ headerRaw, ciphertext, wrappedKey, manifestRaw, signature, deviceId, keys,
  authorSigningPublic, served, reshared = false }) {
  const verified = await verifyManifest(headerRaw, manifestRaw, signature, authorSigningPublic);
  const { header, manifest } = verified;
  checkContext(header, served);
  if (manifest.ciphertextSize !== ciphertext.length) {
    throw new E2EEError("ciphertext_size_mismatch", "ciphertext size differs from the manifest");
  }
  if (manifest.ciphertextSha256 !== toHex(await sha256(ciphertext))) {
    throw new E2EEError("ciphertext_hash_mismatch", "ciphertext hash differs from the manifest");
  }
  if (!reshared && manifest.envelopes[deviceId]?.sha256 !== toHex(await sha256(wrappedKey))) {
    throw new E2EEError("envelope_set_mismatch", "envelope is not listed for this device");
  }
  const contentKey = await unwrapContentKey(verified, wrappedKey, deviceId, keys);
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: ciphertext.subarray(0, 12), additionalData: headerRaw },
      await aesKey(contentKey, "decrypt"),
      ciphertext.subarray(12),
    );
    return { plaintext: new Uint8Array(plaintext), header, reshared };
  } catch {
    throw new E2EEError("decryption_failed", "content does not decrypt");
  } finally {
    contentKey.fill(0);
  }
}

// -- re-sharing (section 12) -------------------------------------------------------------------------------

/**
 * Re-share: verifies the object as a recipient would (served as `served`), opens this device's envelope
 * (commitment checked) and wraps the same content key for each of `recipients` (device id to `{ suite,
 * kemPublic }`) in that device's suite; a version 1 object only for devices of its header's suite. Resolves
 * to the share statement's entries with their envelopes: `[{ objectId, headerSha256, deviceId, envelope }]`.
 */
export async function rewrap({ headerRaw, manifestRaw, signature, authorSigningPublic, served, wrappedKey,
  deviceId, keys }, recipients) {
  const verified = await verifyManifest(headerRaw, manifestRaw, signature, authorSigningPublic);
  const { header, headerSha256 } = verified;
  checkContext(header, served);
  const contentKey = await unwrapContentKey(verified, wrappedKey, deviceId, keys);
  const shared = [];
  try {
    for (const [recipientId, recipient] of recipients) {
      if (header.v === 1 && recipient.suite !== header.suite) continue;
      shared.push({
        objectId: header.objectId,
        headerSha256: toHex(headerSha256),
        deviceId: recipientId,
        envelope: await wrapContentKey(contentKey, header, headerSha256, recipientId, recipient),
      });
    }
  } finally {
    contentKey.fill(0);
  }
  return shared;
}

/** The signed share statement of `entries` (from rewrap): `{ statement, signature }` as bytes. */
export async function signShare(caseId, sharerDeviceId, entries, keys) {
  const statement = shareStatementBytes({
    caseId,
    sharerDeviceId,
    entries: await Promise.all(entries.map(async (entry) => ({
      envelopeSha256: toHex(await sha256(entry.envelope)),
      headerSha256: entry.headerSha256,
      objectId: entry.objectId,
      recipientDeviceId: entry.deviceId,
    }))),
  });
  return { statement, signature: await sign(keys, concat(SHARE_LABEL, statement)) };
}
