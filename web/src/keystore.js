// This browser's device keys, one record per account, in IndexedDB (structured clone keeps CryptoKeys
// as opaque handles: a non-extractable key is stored and used without its bytes ever reaching script).

import { xwingFromSeed } from "./e2ee.js";
import { randomBytes, utf8 } from "./bytes.js";

const DB_NAME = "confrere";
const STORE = "devices";

export function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let opened;

function database() {
  opened ??= (() => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "userId" });
    return request(req);
  })();
  return opened;
}

async function store(mode) {
  return (await database()).transaction(STORE, mode).objectStore(STORE);
}

// The X-Wing seed has no WebCrypto key type, so it is stored encrypted under a non-extractable AES-GCM
// key kept beside it: reads of the database yield ciphertext, and only WebCrypto in this browser profile
// can turn it back into the seed. (Script running on this origin could still ask WebCrypto to decrypt
// it; against that only the CSP and the absence of third-party code protect, see docs/web-client.md.)
function seedContext(userId, deviceId) {
  return utf8(`confrere/web/xwing-seed/${userId}/${deviceId}`);
}

async function sealSeed(seed, userId, deviceId) {
  const storageKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  const iv = randomBytes(12);
  const params = { name: "AES-GCM", iv, additionalData: seedContext(userId, deviceId) };
  const sealed = new Uint8Array(await crypto.subtle.encrypt(params, storageKey, seed));
  return { storageKey, iv, sealed };
}

async function openSeed({ storageKey, iv, sealed }, userId, deviceId) {
  const params = { name: "AES-GCM", iv, additionalData: seedContext(userId, deviceId) };
  return new Uint8Array(await crypto.subtle.decrypt(params, storageKey, sealed));
}

export async function saveDevice(userId, deviceId, label, keys) {
  const record = {
    userId,
    deviceId,
    label,
    suite: keys.suite,
    signingKey: keys.signingKey,
    signingPublic: keys.signingPublic,
    kemPublic: keys.kemPublic,
    createdAt: new Date().toISOString(),
  };
  if (keys.suite === "x25519") record.kemPrivate = keys.kemPrivate;
  else record.kemSeed = await sealSeed(keys.kemSeed, userId, deviceId);
  await request((await store("readwrite")).put(record));
}

/** The device of `userId` in this browser, with keys ready for e2ee.js, or null. */
export async function loadDevice(userId) {
  const record = await request((await store("readonly")).get(userId));
  if (!record) return null;
  const { deviceId, suite, label, signingKey, signingPublic, kemPublic } = record;
  const keys = { suite, signingKey, signingPublic, kemPublic, kemPrivate: record.kemPrivate };
  if (suite === "xwing") {
    keys.kemPrivate = (await xwingFromSeed(await openSeed(record.kemSeed, userId, deviceId))).kemPrivate;
  }
  return { userId, deviceId, label, keys };
}
