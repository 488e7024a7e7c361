// What this browser keeps per circle in IndexedDB (`confrere-circles`): its pseudonym key, one per (account,
// circle), an Ed25519 key generated non-extractable, so that its private half never reaches script, with its
// public key and the ids the server knows it by; and the highest epoch this device has opened, so that a
// server naming a lower current epoch later, even after a reload, is refused (e2ee.md 20.6).

import { request } from "./keystore.js";

const DB_NAME = "confrere-circles";
const PSEUDONYMS = "pseudonyms";
const EPOCHS = "epochs";

let opened;

async function store(name, mode) {
  opened ??= (() => {
    const req = indexedDB.open(DB_NAME, 2);
    req.onupgradeneeded = () => {
      const existing = req.result.objectStoreNames;
      if (!existing.contains(PSEUDONYMS)) req.result.createObjectStore(PSEUDONYMS, { keyPath: "id" });
      if (!existing.contains(EPOCHS)) req.result.createObjectStore(EPOCHS, { keyPath: "id" });
    };
    return request(req);
  })();
  return (await opened).transaction(name, mode).objectStore(name);
}

export async function generatePseudonymKey() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { signingKey: pair.privateKey, publicKey };
}

/** `{ pseudonymId, keyId, name, signingKey, publicKey }` for this account's pseudonym in the circle, or null. */
export async function loadPseudonym(userId, circleId) {
  return (await request((await store(PSEUDONYMS, "readonly")).get(`${userId}/${circleId}`))) ?? null;
}

export async function savePseudonym(userId, circleId, pseudonym) {
  const record = { id: `${userId}/${circleId}`, userId, circleId, ...pseudonym };
  await request((await store(PSEUDONYMS, "readwrite")).put(record));
}

/** The highest epoch of the circle this device has opened (0 if none). */
export async function highestEpoch(deviceId, circleId) {
  return (await request((await store(EPOCHS, "readonly")).get(`${deviceId}/${circleId}`)))?.epoch ?? 0;
}

export async function keepHighestEpoch(deviceId, circleId, epoch) {
  if (epoch <= (await highestEpoch(deviceId, circleId))) return;
  await request((await store(EPOCHS, "readwrite")).put({ id: `${deviceId}/${circleId}`, epoch }));
}
