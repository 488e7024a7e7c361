// What a member's browser does around the circle routes (mirrors app/client/circles.py): it rotates the
// circle's key for exactly the member devices the directory proves, opens the epoch keys wrapped for this
// device, grants those it holds to the user's other devices, seals and signs posts as the member or under a pseudonym, and verifies and opens what it reads.

import { ApiError, E2EEError } from "./errors.js";
import { b64, fromUtf8, unb64 } from "./bytes.js";
import * as circlesApi from "./circles-api.js";
import { newEpoch, openEpoch, openPost, parsePostHeader, postContent, sealPost, signPseudonymBinding }
  from "./circle-format.js";
import { proved, recipients } from "./clinician.js";
import { generatePseudonymKey, highestEpoch, keepHighestEpoch, loadPseudonym, savePseudonym } from "./circle-store.js";

// Epoch keys opened on this page, per device, circle and epoch: kept in memory only, never stored (and
// another account logging in in this tab finds none of them). Beside them, why an epoch did not open.
const epochKeys = new Map();
const epochRefusals = new Map();
// The server answers these when the members' devices changed under a post or a rotation.
const ROTATION_CODES = ["epoch_rotation_required", "members_changed"];
const ROTATION_ATTEMPTS = 3;

function perCircle(store, me, circleId) {
  const key = `${me.deviceId}/${circleId}`;
  if (!store.has(key)) store.set(key, new Map());
  return store.get(key);
}

const keysOf = (me, circleId) => perCircle(epochKeys, me, circleId);
const refusalsOf = (me, circleId) => perCircle(epochRefusals, me, circleId);

/** Every active device of every member, each proved by the device directory before anything is wrapped. */
export async function memberDevices(me, circleId) {
  return recipients(await proved(me, await circlesApi.recipients(circleId)));
}

// A server must not make this device seal under a key that a removed member may still hold: the current
// epoch it names is never below the highest this device has opened, in this page or before (e2ee.md 20.6).
async function refuseRollback(me, circleId, current) {
  const held = Math.max(await highestEpoch(me.deviceId, circleId), ...keysOf(me, circleId).keys());
  if (current < held) {
    throw new E2EEError("epoch_rollback", `the server names epoch ${current}; this device holds ${held}`);
  }
}

const epochBody = (sealed) => ({
  statement: b64(sealed.statement),
  signature: b64(sealed.signature),
  wraps: Object.fromEntries([...sealed.wraps].map(([deviceId, wrap]) => [deviceId, b64(wrap)])),
});

/**
 * A new epoch: a fresh key wrapped for every member device, under a statement this device signs. The
 * server refuses a set of devices that is no longer the members' (`members_changed`): fetched again, retried.
 */
export async function rotate(me, circleId) {
  for (let attempt = 1; ; attempt++) {
    const { current_epoch: current } = await circlesApi.circle(circleId);
    await refuseRollback(me, circleId, current);
    const epoch = current + 1;
    const sealed = await newEpoch({ circleId, epoch, author: me, recipients: await memberDevices(me, circleId) });
    try {
      await circlesApi.postEpoch(circleId, epochBody(sealed));
      keysOf(me, circleId).set(epoch, sealed.epochKey);
      await keepHighestEpoch(me.deviceId, circleId, epoch);
      return epoch;
    } catch (error) {
      // 409: the members' devices changed, or another member rotated first; anything else is final.
      if (error.status !== 409 || attempt >= ROTATION_ATTEMPTS) throw error;
    }
  }
}

/**
 * Opens every epoch key wrapped for this device that is not open yet. The statement is verified with the
 * key of the device the server names (`author_device`), which must be the one the signed statement names;
 * a grant's commitment must also be its epoch's rotation's when this device holds both. Refusals are kept,
 * by epoch, to say why a post of that epoch cannot be read. Returns the circle's epoch state.
 */
export async function loadEpochKeys(me, circleId) {
  const answer = await circlesApi.epochs(circleId);
  const opened = keysOf(me, circleId);
  const refused = refusalsOf(me, circleId);
  const rotations = new Map();
  const order = (held) => (held.kind === "rotate" ? 0 : 1);
  const rotationsFirst = [...answer.epochs].sort((a, b) => order(a) - order(b));
  for (const held of rotationsFirst) {
    if (opened.has(held.epoch)) continue;
    try {
      const author = held.author_device;
      const { epochKey, statement } = await openEpoch({
        statementRaw: unb64(held.statement),
        signature: unb64(held.signature),
        wrap: unb64(held.wrap),
        keys: me.keys,
        deviceId: me.deviceId,
        authorSigningPublic: unb64(author.signing_public_key),
        circleId,
        epoch: held.epoch,
        rotationCommitment: held.kind === "grant" ? rotations.get(held.epoch) ?? null : null,
      });
      if (statement.authorDeviceId !== author.device_id) {
        throw new E2EEError("invalid_epoch_statement", "the statement names another author device");
      }
      if (statement.kind === "rotate") rotations.set(held.epoch, statement.keyCommitment);
      opened.set(held.epoch, epochKey);
      refused.delete(held.epoch);
    } catch (error) {
      if (!opened.has(held.epoch)) refused.set(held.epoch, error);
    }
  }
  if (opened.size) await keepHighestEpoch(me.deviceId, circleId, Math.max(...opened.keys()));
  return { currentEpoch: answer.current_epoch, rotationRequired: answer.rotation_required };
}

/**
 * Gives this user's other devices the circle's epoch keys this browser holds (e2ee.md section 20, `kind:
 * grant`, as `grant` in app/client/circles.py): a browser registered after an epoch holds no wrap of it. The
 * devices are this user's as the device directory proves them, before anything is wrapped; one statement per
 * device and epoch, so that a device that already holds an epoch (`wrap_already_held`) is skipped. Returns
 * how many keys were added.
 */
export async function grantOwnDevices(me, circleId) {
  await loadEpochKeys(me, circleId);
  const devices = (await proved(me, await circlesApi.recipients(circleId)))
    .filter((device) => device.user_id === me.userId && device.device_id !== me.deviceId);
  const held = [...keysOf(me, circleId)].sort(([a], [b]) => a - b);
  let added = 0;
  for (const [deviceId, recipient] of recipients(devices)) {
    for (const [epoch, epochKey] of held) {
      const sealed = await newEpoch({ circleId, epoch, author: me, recipients: new Map([[deviceId, recipient]]),
        kind: "grant", epochKey });
      try {
        added += (await circlesApi.postEpoch(circleId, epochBody(sealed))).wrap_count;
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== "wrap_already_held") throw error;
      }
    }
  }
  return added;
}

/** This member's pseudonym in the circle on this device, registered with the server on first use. */
export async function ensurePseudonym(me, circleId, name) {
  const kept = await loadPseudonym(me.userId, circleId);
  if (kept) return kept;
  if (!name?.trim()) throw new E2EEError("pseudonym_name_required");
  const key = await generatePseudonymKey();
  const pseudonymId = crypto.randomUUID();
  const { binding, signature } = await signPseudonymBinding(me.keys, { circleId, deviceId: me.deviceId,
    pseudonymId, publicKey: key.publicKey });
  const created = await circlesApi.createPseudonym(circleId, { name: name.trim(), public_key: b64(key.publicKey),
    binding: b64(binding), binding_signature: b64(signature) });
  const pseudonym = { pseudonymId: created.pseudonym_id, keyId: created.key_id, name: created.name, ...key };
  await savePseudonym(me.userId, circleId, pseudonym);
  return pseudonym;
}

async function sealAndSend(me, circleId, { postId, parentId, text, title, pseudonym, session }) {
  const { currentEpoch } = await loadEpochKeys(me, circleId);
  await refuseRollback(me, circleId, currentEpoch);
  const epochKey = keysOf(me, circleId).get(currentEpoch);
  if (!epochKey) throw new E2EEError("no_epoch_key");
  const header = {
    author: pseudonym ? pseudonym.keyId : me.deviceId,
    authorKind: pseudonym ? "pseudonym" : "device",
    circleId,
    epoch: currentEpoch,
    kind: parentId === postId ? "post" : "reply",
    objectId: postId,
    parentId,
  };
  const signingKey = pseudonym ? pseudonym.signingKey : me.keys.signingKey;
  const sealed = await sealPost(epochKey, header, postContent(text, title), signingKey);
  await circlesApi.createPost(circleId, {
    header: b64(sealed.header),
    manifest: b64(sealed.manifest),
    signature: b64(sealed.signature),
    ciphertext: b64(sealed.ciphertext),
    ...(session ? { session } : {}),
  });
}

/**
 * Seals and posts a top-level post (no `parentId`) or a reply, as the member or under the pseudonym
 * (`pseudonymName` names it the first time). The circle waiting for a new key (no epoch yet, a member came
 * or went, or this browser came after the current epoch) is answered by rotating it first, then posting
 * again. Returns the post's id.
 */
export async function writePost(me, circleId, { text, title = "", parentId = null, asPseudonym = false,
  pseudonymName = "", session = null }) {
  const postId = crypto.randomUUID();
  const pseudonym = asPseudonym ? await ensurePseudonym(me, circleId, pseudonymName) : null;
  const draft = { postId, parentId: parentId ?? postId, text, title: parentId ? "" : title, pseudonym, session };
  const state = await circlesApi.circle(circleId);
  if (state.current_epoch === 0 || state.rotation_required) await rotate(me, circleId);
  for (let attempt = 1; ; attempt++) {
    try {
      await sealAndSend(me, circleId, draft);
      return postId;
    } catch (error) {
      // A browser registered after the current epoch holds no key for it: a new epoch includes it.
      const staleKey = error instanceof ApiError ? ROTATION_CODES.includes(error.code) : error.code === "no_epoch_key";
      if (!staleKey || attempt >= ROTATION_ATTEMPTS) throw error;
      await rotate(me, circleId);
    }
  }
}

async function settle(promise) {
  try {
    return { ok: true, ...(await promise) };
  } catch (error) {
    return { ok: false, error };
  }
}

// The key that must have signed the post: a pseudonym's key as the circle lists it, or the device the
// server names, which must be the header's and belong to the member the post is shown from.
function authorKey(item, header, pseudonymKeys) {
  if (header.authorKind === "pseudonym") {
    if (item.author.kind !== "pseudonym") throw new E2EEError("invalid_post_header", "author kinds differ");
    const key = pseudonymKeys.get(header.author);
    if (!key || key.pseudonymId !== item.author.pseudonym_id) {
      throw new E2EEError("unknown_author_key", "the pseudonym's key is not listed");
    }
    return key.publicKey;
  }
  const device = item.sealed.author_device;
  if (item.author.kind !== "member" || device?.device_id !== header.author
    || device.user_id !== item.author.user_id) {
    throw new E2EEError("invalid_post_header", "the server named another author device than the header");
  }
  return unb64(device.signing_public_key);
}

/** The circle's pseudonym keys by key id (a pseudonymous post names its key in its header). */
export async function pseudonymKeys(circleId) {
  const keys = new Map();
  for (const pseudonym of await circlesApi.pseudonyms(circleId)) {
    for (const key of pseudonym.keys) {
      keys.set(key.key_id, { pseudonymId: pseudonym.id, name: pseudonym.name, publicKey: unb64(key.public_key) });
    }
  }
  return keys;
}

/**
 * One post or reply as served, verified and opened on this device: `{ item, ok, body, title }` or
 * `{ item, ok: false, error }` (a post from before this device's first epoch says `no_epoch_key`). Hidden
 * posts come without sealed fields unless the reader moderates.
 */
export async function openItem(me, circleId, item, pseudonymKeyMap) {
  if (!item.sealed) return { item, ok: false, error: null };
  return { item, ...(await settle((async () => {
    const headerRaw = unb64(item.sealed.header);
    const header = parsePostHeader(headerRaw);
    const epochKey = keysOf(me, circleId).get(item.epoch);
    if (!epochKey) throw refusalsOf(me, circleId).get(item.epoch) ?? new E2EEError("no_epoch_key");
    const parentId = item.parent_id ?? item.id;
    const { plaintext } = await openPost({
      epochKey,
      headerRaw,
      manifestRaw: unb64(item.sealed.manifest),
      signature: unb64(item.sealed.signature),
      ciphertext: unb64(item.sealed.ciphertext),
      authorSigningPublic: authorKey(item, header, pseudonymKeyMap),
      served: { circleId, objectId: item.id, kind: item.parent_id ? "reply" : "post", parentId, epoch: item.epoch },
    });
    const content = JSON.parse(fromUtf8(plaintext));
    if (typeof content?.body !== "string") throw new E2EEError("invalid_content", "a post has a body");
    return { body: content.body, title: typeof content.title === "string" ? content.title : "" };
  })())) };
}
