// The key backup (docs/e2ee.md section 19, "Key backup"): this device's private keys encrypted under a passphrase,
// stored blind by the server. Argon2id (hash-wasm, WebAssembly) stretches the passphrase into an
// AES-256-GCM key; the account id is associated data. app/crypto/key_backup.py is the same scheme.
//
// Keys that can be backed up are made from random 32-byte secrets, held in memory only while the backup is
// written, then imported into WebCrypto as non-extractable keys like any other device key.

import { argon2id } from "hash-wasm";

import { b64, concat, equalBytes, fromUtf8, randomBytes, unb64, utf8 } from "./bytes.js";
import { xwingFromSeed } from "./e2ee.js";
import { E2EEError } from "./errors.js";

const VERSION = 1;
const LABEL = utf8("confrere/v1/key-backup\0");
// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
export const DEFAULT_COST = { m: 65536, t: 3, p: 4 };
// PKCS #8 prefixes of a raw 32-byte Ed25519 or X25519 private key (RFC 8410).
const PKCS8_PREFIX = {
  Ed25519: Uint8Array.from([48, 46, 2, 1, 0, 48, 5, 6, 3, 43, 101, 112, 4, 34, 4, 32]),
  X25519: Uint8Array.from([48, 46, 2, 1, 0, 48, 5, 6, 3, 43, 101, 110, 4, 34, 4, 32]),
};

// Bounds, so that a backup handed over by a hostile server cannot make the browser hash for hours or run
// out of memory, nor weaken the stretching to nothing (the same as the Python client's).
function checkCost({ m, t, p }) {
  const within = (value, low, high) => Number.isInteger(value) && value >= low && value <= high;
  if (!(within(m, 19456, 1048576) && within(t, 1, 10) && within(p, 1, 8))) {
    throw new E2EEError("invalid_backup", "the backup's Argon2id cost is out of bounds");
  }
}

async function passphraseKey(passphrase, salt, { m, t, p }, usage) {
  const raw = await argon2id({
    password: utf8(passphrase.normalize("NFC")),
    salt,
    parallelism: p,
    iterations: t,
    memorySize: m,
    hashLength: 32,
    outputType: "binary",
  });
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
}

const associatedData = (userId) => concat(LABEL, utf8(userId));

/** A private key and its raw public key from a 32-byte secret; the private key is non-extractable. */
async function importSecret(algorithm, secret, usages) {
  const pkcs8 = concat(PKCS8_PREFIX[algorithm], secret);
  // Imported once extractable only to read the public half (JWK "x"), then again for keeps.
  const { x } = await crypto.subtle.exportKey(
    "jwk",
    await crypto.subtle.importKey("pkcs8", pkcs8, { name: algorithm }, true, usages),
  );
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: algorithm }, false, usages);
  const publicRaw = unb64(x.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(x.length / 4) * 4, "="));
  return { privateKey, publicRaw };
}

/** Device keys, shaped as e2ee.js makes them, from the two 32-byte secrets a backup holds. */
export async function keysFromSecrets(suite, signingSecret, kemSecret) {
  const signing = await importSecret("Ed25519", signingSecret, ["sign"]);
  const keys = { suite, signingKey: signing.privateKey, signingPublic: signing.publicRaw };
  if (suite === "x25519") {
    const kem = await importSecret("X25519", kemSecret, ["deriveBits"]);
    const publicKey = await crypto.subtle.importKey("raw", kem.publicRaw, { name: "X25519" }, true, []);
    return { ...keys, kemPublic: kem.publicRaw, kemPrivate: { privateKey: kem.privateKey, publicKey } };
  }
  if (suite === "xwing") return { ...keys, ...(await xwingFromSeed(kemSecret)) };
  throw new E2EEError("unknown_suite", "unknown E2EE suite");
}

/** Fresh device keys whose secrets are returned too, for the backup written at registration. */
export async function backupableKeys(suite) {
  const secrets = { suite, signingPrivate: randomBytes(32), kemPrivate: randomBytes(32) };
  return { keys: await keysFromSecrets(suite, secrets.signingPrivate, secrets.kemPrivate), secrets };
}

/** The backup blob (bytes) of `devices` (device id -> secrets) for the account `userId`. */
export async function sealBackup(passphrase, userId, devices, cost = DEFAULT_COST) {
  checkCost(cost);
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const plaintext = utf8(JSON.stringify({
    v: VERSION,
    devices: Object.entries(devices).map(([deviceId, s]) => ({
      device_id: deviceId,
      suite: s.suite,
      signing_private: b64(s.signingPrivate),
      kem_private: b64(s.kemPrivate),
    })),
  }));
  const key = await passphraseKey(passphrase, salt, cost, "encrypt");
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: associatedData(userId) }, key, plaintext));
  return utf8(JSON.stringify({
    v: VERSION, kdf: "argon2id", ...cost, salt: b64(salt), nonce: b64(nonce), ciphertext: b64(ciphertext),
  }));
}

/** The devices in a backup (device id -> secrets); `wrong_passphrase` when it does not open. */
export async function openBackup(passphrase, userId, blob) {
  let envelope;
  try {
    envelope = JSON.parse(fromUtf8(blob));
  } catch {
    throw new E2EEError("invalid_backup", "the key backup is malformed");
  }
  if (envelope?.v !== VERSION || envelope.kdf !== "argon2id") {
    throw new E2EEError("invalid_backup", "unknown key backup version or KDF");
  }
  const cost = { m: envelope.m, t: envelope.t, p: envelope.p };
  checkCost(cost);
  const salt = unb64(envelope.salt);
  const nonce = unb64(envelope.nonce);
  if (salt.length !== 16 || nonce.length !== 12) throw new E2EEError("invalid_backup", "malformed backup");
  const key = await passphraseKey(passphrase, salt, cost, "decrypt");
  let plaintext;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: associatedData(userId) }, key, unb64(envelope.ciphertext));
  } catch {
    throw new E2EEError("wrong_passphrase", "the passphrase does not open this key backup");
  }
  const { devices } = JSON.parse(fromUtf8(new Uint8Array(plaintext)));
  return Object.fromEntries(devices.map((d) => [d.device_id, {
    suite: d.suite, signingPrivate: unb64(d.signing_private), kemPrivate: unb64(d.kem_private),
  }]));
}

/** Whether restored keys are those the server registered for the device (public halves compared). */
export function matchesRegistered(keys, device) {
  return equalBytes(keys.signingPublic, unb64(device.signing_public_key)) &&
    equalBytes(keys.kemPublic, unb64(device.kem_public_key));
}
