// The device directory log in the browser (docs/e2ee.md section 18; mirrors app/client/directory.py):
// before sealing, every device comes with an inclusion proof of its registration entry to a checkpoint
// signed by the pinned directory log key and consistent with the last checkpoint this browser kept; and
// the user's own entries are watched for devices this browser did not register or the user did not approve.
// Colleagues the user marked verified have their safety number pinned (section 18.5): a change stops the
// sealing for them until the user compares again. Refusals carry a `detail` key of the catalogue and its
// values, so that the reason shows in the page's language (errors.js).

import * as api from "./api.js";
import { concat, equalBytes, fromUtf8, sha256, unb64, utf8 } from "./bytes.js";
import { registrationMessage, verifySignature } from "./e2ee.js";
import { E2EEError } from "./errors.js";
import { safetyNumber } from "./safety.js";

const DB_NAME = "confrere-directory";
const STORE = "trust";
const TILE_WIDTH = 256;

// -- the pin and the last checkpoint, per account, in IndexedDB -------------------------------------------

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let opened;

async function store(mode) {
  opened ??= (() => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "userId" });
    return request(req);
  })();
  return (await opened).transaction(STORE, mode).objectStore(STORE);
}

async function loadTrust(userId) {
  const trust = (await request((await store("readonly")).get(userId))) ?? { userId, approved: [] };
  trust.verified ??= {};
  return trust;
}

async function saveTrust(trust) {
  await request((await store("readwrite")).put(trust));
}

/** Approves a device of this user (one registered here, or one the user says is theirs). */
export async function approveDevice(userId, deviceId) {
  const trust = await loadTrust(userId);
  if (!trust.approved.includes(deviceId)) trust.approved.push(deviceId);
  await saveTrust(trust);
}

/** Pins the safety number `digits` of `colleagueId`, compared by `userId` with the colleague. */
export async function markVerified(userId, colleagueId, digits) {
  const trust = await loadTrust(userId);
  trust.verified[colleagueId] = digits;
  await saveTrust(trust);
}

/** The safety number `userId` pinned for `colleagueId` when marking them verified, or null. */
export async function pinnedNumber(userId, colleagueId) {
  return (await loadTrust(userId)).verified[colleagueId] ?? null;
}

// A refusal whose reason is in the catalogue: `detail` is a key (or null), `values` fill it and the sentence.
const refusal = (code, english, detail, values = {}) => new E2EEError(code, english, { ...values, detail });

// -- signed notes and checkpoints (C2SP) ---------------------------------------------------------------

async function parseVerifierKey(keyString) {
  // name+hex key id+base64 key: the base64 part may itself hold "+" characters.
  const first = keyString.indexOf("+");
  const second = keyString.indexOf("+", first + 1);
  const [name, hexId, encoded] = [keyString.slice(0, first), keyString.slice(first + 1, second),
    keyString.slice(second + 1)];
  const raw = unb64(encoded);
  if (raw.length !== 33 || raw[0] !== 1) {
    throw refusal("directory_checkpoint_invalid", "bad log key", "directory.why.bad_key");
  }
  const publicKey = raw.subarray(1);
  const keyId = (await sha256(concat(utf8(name), new Uint8Array([0x0a, 0x01]), publicKey))).subarray(0, 4);
  if (hexId !== Array.from(keyId, (b) => b.toString(16).padStart(2, "0")).join("")) {
    throw refusal("directory_checkpoint_invalid", "the log key's id does not match it", "directory.why.bad_key");
  }
  return { name, keyId, publicKey };
}

async function openCheckpoint(note, key) {
  const refuse = (why, detail) => refusal("directory_checkpoint_invalid", `directory checkpoint: ${why}`,
    `directory.why.${detail}`);
  const split = note.indexOf("\n\n");
  if (split < 0) throw refuse("not a signed note", "malformed");
  const text = note.slice(0, split + 1);
  let signed = false;
  for (const line of note.slice(split + 2).split("\n").filter(Boolean)) {
    const [dash, name, encoded] = line.split(" ");
    if (dash !== "\u2014" || name !== key.name || !encoded) continue;
    const blob = unb64(encoded);
    if (blob.length !== 68 || !equalBytes(blob.subarray(0, 4), key.keyId)) continue;
    await verifySignature(key.publicKey, blob.subarray(4), utf8(text)).catch(() => {
      throw refuse("the signature does not verify with the pinned key", "bad_signature");
    });
    signed = true;
  }
  if (!signed) throw refuse("not signed by the pinned key", "unsigned");
  const [origin, size, root] = text.slice(0, -1).split("\n");
  if (origin !== key.name || !/^(0|[1-9][0-9]*)$/.test(size)) throw refuse("malformed", "malformed");
  return { size: Number(size), root: unb64(root), note };
}

// -- RFC 6962 / RFC 9162 ---------------------------------------------------------------------------------

const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));
const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

async function rootFromInclusion(leaf, index, size, proof) {
  let fn = index;
  let sn = size - 1;
  let root = leaf;
  for (const sibling of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      root = await nodeHash(sibling, root);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      root = await nodeHash(root, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? root : null;
}

async function consistent(older, newer, proof) {
  if (older.size === newer.size) return proof.length === 0 && equalBytes(older.root, newer.root);
  if (older.size === 0) return proof.length === 0;
  const path = (older.size & (older.size - 1)) === 0 ? [older.root, ...proof] : [...proof];
  let fn = older.size - 1;
  let sn = newer.size - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (path.length === 0) return false;
  let oldRoot = path[0];
  let newRoot = path[0];
  for (const node of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      oldRoot = await nodeHash(node, oldRoot);
      newRoot = await nodeHash(node, newRoot);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      newRoot = await nodeHash(newRoot, node);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(oldRoot, older.root) && equalBytes(newRoot, newer.root);
}

async function treeRoot(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array());
  if (leaves.length === 1) return leaves[0];
  let split = 1;
  while (split * 2 < leaves.length) split *= 2;
  return nodeHash(await treeRoot(leaves.slice(0, split)), await treeRoot(leaves.slice(split)));
}

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));

// -- what is checked before sealing ------------------------------------------------------------------------

/** The pinned key (pinned now on first use) and the checkpoint a new answer must be consistent with. */
async function accept(userId, note) {
  const trust = await loadTrust(userId);
  trust.key ??= await api.directoryKey();
  const key = await parseVerifierKey(trust.key);
  const checkpoint = await openCheckpoint(note, key);
  const last = trust.checkpoint ? await openCheckpoint(trust.checkpoint, key) : null;
  if (last) {
    const [older, newer] = last.size <= checkpoint.size ? [last, checkpoint] : [checkpoint, last];
    const proof = older.size === newer.size ? { hashes: [] } : await api.directoryConsistency(older.size,
      newer.size);
    if (!(await consistent(older, newer, proof.hashes.map(fromHex)))) {
      throw refusal("directory_log_forked",
        `the directory checkpoint of size ${checkpoint.size} is not consistent with the one of size ` +
        `${last.size} this browser saw`, "directory.why.forked", { size: checkpoint.size, last: last.size });
    }
  }
  if (!last || checkpoint.size > last.size) trust.checkpoint = note;
  await saveTrust(trust);
  return checkpoint;
}

async function checkDevice(device, checkpoint) {
  const named = device.device_id;
  const proof = device.directory;
  const refuse = (code, why, detail) => refusal(code, `device ${named}: ${why}`, `directory.why.${detail}`,
    { device: named.slice(0, 8), size: checkpoint.size });
  if (!proof) throw refuse("device_not_in_directory", "no directory entry", "no_entry");
  if (proof.index >= checkpoint.size) {
    throw refuse("device_not_in_directory", `its entry lies outside the checkpoint (size ${checkpoint.size})`,
      "outside");
  }
  const entryRaw = unb64(proof.entry);
  const root = await rootFromInclusion(await leafHash(entryRaw), proof.index, checkpoint.size,
    proof.inclusion.map(fromHex));
  if (!root || !equalBytes(root, checkpoint.root)) {
    throw refuse("device_not_in_directory", "bad inclusion proof", "inclusion");
  }
  const entry = JSON.parse(fromUtf8(entryRaw));
  const same = entry.action === "device.register" && entry.user === device.user_id && entry.device === named &&
    entry.suite === device.suite && entry.signing_public_key === device.signing_public_key &&
    entry.kem_public_key === device.kem_public_key;
  if (!same) throw refuse("device_keys_mismatch", "the keys served differ from its directory entry", "keys");
  const message = registrationMessage(unb64(entry.challenge), entry.user, entry.suite,
    unb64(entry.signing_public_key), unb64(entry.kem_public_key), unb64(entry.kem_proof));
  await verifySignature(unb64(entry.signing_public_key), unb64(entry.signature), message).catch(() => {
    throw refuse("invalid_directory_entry", "the proof of possession does not verify", "possession");
  });
}

// Section 18.3 step 4: the safety number of every verified colleague among the devices, as served now.
async function checkPins(userId, devices) {
  const { verified } = await loadTrust(userId);
  const byUser = new Map();
  for (const device of devices) byUser.set(device.user_id, [...(byUser.get(device.user_id) ?? []), device]);
  for (const [colleague, pinned] of Object.entries(verified)) {
    if (!byUser.has(colleague)) continue;
    const now = (await safetyNumber(colleague, byUser.get(colleague))).digits;
    if (now !== pinned) {
      throw refusal("safety_number_changed", `the devices of verified colleague ${colleague} changed (safety ` +
        `number was ${pinned}, is now ${now})`, null, { user: colleague, pinned, now });
    }
  }
}

/**
 * The answer's devices once every one is proved and no verified colleague's safety number changed (unless
 * `pins` is false: to show the number that changed); rejects with the reason otherwise (nothing is sealed).
 */
export async function verifiedDevices(userId, checkpointNote, devices, { pins = true } = {}) {
  const checkpoint = await accept(userId, checkpointNote);
  for (const device of devices) await checkDevice(device, checkpoint);
  if (pins) await checkPins(userId, devices);
  return devices;
}

// -- monitoring one's own account --------------------------------------------------------------------------

/**
 * Reads the whole log from its public tiles, checks it against an accepted checkpoint, and returns the
 * user's registered devices this browser did not register and the user did not approve.
 */
export async function unknownDevices(userId) {
  const checkpoint = await accept(userId, await api.directoryCheckpoint());
  const leaves = [];
  const registered = new Map();
  for (let bundle = 0; bundle * TILE_WIDTH < checkpoint.size; bundle += 1) {
    const width = Math.min(TILE_WIDTH, checkpoint.size - bundle * TILE_WIDTH);
    const data = await api.directoryEntries(bundle, width);
    for (let offset = 0; offset < data.length; ) {
      const length = (data[offset] << 8) | data[offset + 1];
      const raw = data.subarray(offset + 2, offset + 2 + length);
      offset += 2 + length;
      leaves.push(await leafHash(raw));
      const entry = JSON.parse(fromUtf8(raw));
      if (entry.user !== userId) continue;
      if (entry.action === "device.register") registered.set(entry.device, { id: entry.device, at: entry.time });
      if (entry.action === "device.revoke" && registered.has(entry.device)) registered.get(entry.device).revoked = true;
    }
  }
  if (leaves.length !== checkpoint.size || !equalBytes(await treeRoot(leaves), checkpoint.root)) {
    throw refusal("directory_log_mismatch", "the directory log does not hash to its signed root",
      "directory.why.root");
  }
  const { approved } = await loadTrust(userId);
  return [...registered.values()].filter((device) => !approved.includes(device.id));
}
