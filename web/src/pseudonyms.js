// This device's pseudonym keys, one per (account, circle), in IndexedDB (`confrere-circles`): an Ed25519 key
// generated non-extractable, so that its private half never reaches script, with its public key and the ids
// the server knows it by. A pseudonym's posts can only be signed from the devices that hold such a key.

import { request } from "./keystore.js";

const DB_NAME = "confrere-circles";
const STORE = "pseudonyms";

let opened;

async function store(mode) {
  opened ??= (() => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
    return request(req);
  })();
  return (await opened).transaction(STORE, mode).objectStore(STORE);
}

const recordId = (userId, circleId) => `${userId}/${circleId}`;

export async function generatePseudonymKey() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { signingKey: pair.privateKey, publicKey };
}

/** `{ pseudonymId, keyId, name, signingKey, publicKey }` for this account's pseudonym in the circle, or null. */
export async function loadPseudonym(userId, circleId) {
  return (await request((await store("readonly")).get(recordId(userId, circleId)))) ?? null;
}

export async function savePseudonym(userId, circleId, pseudonym) {
  await request((await store("readwrite")).put({ id: recordId(userId, circleId), userId, circleId, ...pseudonym }));
}
