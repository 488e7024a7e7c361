// What a clinician's browser does around each API call (mirrors app/client/clinician.py): it seals and
// signs before upload and verifies and opens after download. The server only ever sees ciphertext.

import * as api from "./api.js";
import { b64, unb64 } from "./bytes.js";
import { caseContent, messageContent, parseContent } from "./content.js";
import {
  generateDeviceKeys,
  openKemChallenge,
  openSealed,
  registrationMessage,
  rewrap,
  seal,
  sign,
  signShare,
} from "./e2ee.js";
import { parseHeader, parseManifest } from "./canonical.js";
import { E2EEError } from "./errors.js";
import { approveDevice, markVerified, verifiedDevices } from "./directory.js";
import { saveDevice } from "./keystore.js";
import { safetyNumber } from "./safety.js";

// Cases in these states take no new content; catch-up leaves them (the reference client's FINAL_STATUSES).
const FINAL_STATUSES = ["closed", "withdrawn"];

/**
 * Registers the public halves of `keys` (created here unless given, e.g. backed-up keys), proving possession
 * of both: it opens the secret the server sealed to the KEM key and signs it with the challenge
 * (docs/e2ee.md section 11). Keeps the keys.
 */
export async function enrolDevice(user, suite, label, given = null) {
  const keys = given ?? (await generateDeviceKeys(suite));
  const challenge = await api.deviceChallenge({ suite, kem_public_key: b64(keys.kemPublic) });
  const nonce = unb64(challenge.challenge);
  const kemProof = await openKemChallenge(keys, unb64(challenge.kem_challenge), nonce, user.id);
  const message = registrationMessage(nonce, user.id, suite, keys.signingPublic, keys.kemPublic, kemProof);
  const device = await api.registerDevice({
    challenge_id: challenge.challenge_id,
    suite,
    signing_public_key: b64(keys.signingPublic),
    kem_public_key: b64(keys.kemPublic),
    label,
    kem_proof: b64(kemProof),
    signature: b64(await sign(keys, message)),
  });
  await saveDevice(user.id, device.id, label, keys);
  await approveDevice(user.id, device.id);
  return { userId: user.id, deviceId: device.id, label, keys };
}

function sealedIn(sealed) {
  return {
    header: b64(sealed.header),
    ciphertext: b64(sealed.ciphertext),
    envelopes: [...sealed.envelopes].map(([deviceId, key]) => ({
      device_id: deviceId,
      wrapped_key: b64(key),
    })),
    manifest: b64(sealed.manifest),
    signature: b64(sealed.signature),
  };
}

// Every device the API names, each in its own suite: one version 2 object serves x25519 and X-Wing devices.
export function recipients(devices) {
  return new Map(devices.map((d) => [d.device_id, { suite: d.suite, kemPublic: unb64(d.kem_public_key) }]));
}

// Every answer that names devices is checked against the device directory log before anything is sealed
// for them (docs/e2ee.md section 18.3): a device it does not prove stops the sealing, with the reason.
// A verified colleague whose safety number changed stops it too (section 18.3 step 4), unless `pins` is
// false: to show that colleague the number now served.
export const proved = (me, answer, pins = true) => verifiedDevices(me.userId, answer.checkpoint, answer.devices, { pins });

async function ownDevices(me, pins = true) {
  const { checkpoint, devices } = await api.provedDevices();
  const active = devices
    .filter((d) => d.revoked_at === null)
    .map((d) => ({ ...d, device_id: d.id }));
  return proved(me, { checkpoint, devices: active }, pins);
}

/** A colleague's (or one's own) active devices, proved by the directory. */
async function devicesOf(me, userId, pins = true) {
  if (userId === me.userId) return ownDevices(me, pins);
  return proved(me, await api.userDevices(userId), pins);
}

/** The safety number of `userId` (docs/e2ee.md section 18.5) over the devices the directory proves now. */
export async function safetyNumberOf(me, userId) {
  return safetyNumber(userId, await devicesOf(me, userId, false));
}

/** Marks `userId` verified with the number the user just compared (refused if it changed meanwhile). */
export async function markColleagueVerified(me, userId, digits) {
  const now = await safetyNumberOf(me, userId);
  if (now.digits !== digits) {
    throw new E2EEError("safety_number_changed", "the number changed while it was shown",
      { user: userId, pinned: digits, now: now.digits });
  }
  await markVerified(me.userId, userId, digits);
}

function sealFor(me, caseId, kind, objectId, plaintext, audience) {
  const header = { caseId, kind, objectId, authorDeviceId: me.deviceId };
  return seal(plaintext, header, audience, me.keys);
}

/**
 * Seals the case for the specialty's specialists (or one named specialist) and this user's devices,
 * then each photo as its own attachment for the same audience. Returns the new case id.
 */
export async function createCase(me, { specialty, question, patient, priority, consentAt, photos }) {
  const caseId = crypto.randomUUID();
  const specialists = recipients(await proved(me, await api.specialtyRecipients(specialty)));
  if (specialists.size === 0) throw new E2EEError("no_recipients");
  const audience = new Map([...specialists, ...recipients(await ownDevices(me))]);
  const items = photos.map((photo) => ({ id: crypto.randomUUID(), ...photo }));
  const content = caseContent(question, items.map(({ id, name, mediaType, data }) => ({ id, name,
    media_type: mediaType, size: data.length })), patient);
  const sealed = await sealFor(me, caseId, "case", caseId, content, audience);
  await api.createCase({
    id: caseId,
    specialty,
    priority,
    patient_consent_at: consentAt,
    sealed: sealedIn(sealed),
  });
  for (const item of items) {
    const attachment = await sealFor(me, caseId, "attachment", item.id, item.data, audience);
    const { ciphertext, ...meta } = sealedIn(attachment);
    await api.uploadAttachment(caseId, { id: item.id, ...meta }, attachment.ciphertext);
  }
  return caseId;
}

// Everyone who takes part (the case's participants: requester, assignee, named specialist, shared
// colleagues), and while the case waits in the queue the specialty's specialists (docs/api.md section 7).
async function participantDevices(me, kase) {
  const { checkpoint, users } = kase.participants;
  let devices = (await ownDevices(me)).concat(
    await proved(me, { checkpoint, devices: users.flatMap((user) => user.devices) }),
  );
  if (kase.status === "open" && kase.named_specialist_id === null) {
    devices = devices.concat(await proved(me, await api.specialtyRecipients(kase.specialty)));
  }
  return recipients(devices);
}

export async function post(me, caseId, kind, text) {
  const kase = await api.getCase(caseId);
  const messageId = crypto.randomUUID();
  const sealed = await sealFor(me, caseId, kind, messageId, messageContent(text), await participantDevices(me, kase));
  await api.postMessage(caseId, { id: messageId, kind, sealed: sealedIn(sealed) });
  return messageId;
}

/**
 * Verifies and decrypts an API `sealed` object for this device (docs/api.md section 6), served as `served`
 * (`{ caseId, kind, objectId }`, which its signed header must name). Resolves to
 * `{ plaintext, author, reshared }`; rejects with an E2EEError whose code says what failed.
 */
export async function openObject(me, sealed, served, ciphertext) {
  const author = sealed.author_device;
  const headerRaw = unb64(sealed.header);
  const manifestRaw = unb64(sealed.manifest);
  // The server names the author's keys; they must be those of the device the signed header names.
  if (author.device_id !== parseHeader(headerRaw).authorDeviceId) {
    throw new E2EEError("invalid_header", "the server named another author device than the header");
  }
  const mine = sealed.envelopes.find((e) => e.device_id === me.deviceId);
  if (!mine) throw new E2EEError("no_envelope");
  const opened = await openSealed({
    headerRaw,
    ciphertext: ciphertext ?? unb64(sealed.ciphertext),
    wrappedKey: unb64(mine.wrapped_key),
    manifestRaw,
    signature: unb64(sealed.signature),
    deviceId: me.deviceId,
    keys: me.keys,
    authorSigningPublic: unb64(author.signing_public_key),
    served,
    reshared: !Object.hasOwn(parseManifest(manifestRaw).envelopes, me.deviceId),
  });
  return { ...opened, author };
}

async function settle(promise) {
  try {
    return { ok: true, ...(await promise) };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * The case with every object opened independently: one item that fails verification is shown as
 * refused without hiding the others, and content that does not match its schema as raw text.
 */
export async function openCase(me, caseId) {
  const kase = await api.getCase(caseId);
  const content = await settle(
    openObject(me, kase.sealed, { caseId, kind: "case", objectId: caseId })
      .then((o) => ({ ...o, ...parseContent("case", o.plaintext) })),
  );
  const listed = content.ok ? content.content?.attachments ?? [] : [];
  const described = new Map(listed.map((a) => [a.id, a]));
  const attachments = await Promise.all(
    kase.attachments.map(async (attachment) => ({
      id: attachment.id,
      name: described.get(attachment.id)?.name ?? attachment.id,
      mediaType: described.get(attachment.id)?.media_type ?? "application/octet-stream",
      ...(await settle(
        api.downloadAttachment(caseId, attachment.id).then((data) =>
          openObject(me, attachment.sealed, { caseId, kind: "attachment", objectId: attachment.id }, data)),
      )),
    })),
  );
  const thread = await Promise.all(
    (await api.all(api.messages(caseId))).map(async (message) => ({
      id: message.id,
      kind: message.kind,
      authorId: message.author_id,
      createdAt: message.created_at,
      ...(await settle(
        openObject(me, message.sealed, { caseId, kind: message.kind, objectId: message.id }).then((o) => {
          const { content, rawText } = parseContent(message.kind, o.plaintext);
          return { ...o, text: content ? content.text : rawText, raw: content === null };
        }),
      )),
    })),
  );
  return { kase, content, attachments, thread };
}

// -- re-sharing and catch-up (docs/e2ee.md sections 12 and 18.6) -----------------------------------------

// Every object of the case this device holds an envelope for, re-wrapped for `targets`, in one signed
// share to `recipientUserId`. Objects sealed before this device existed are skipped. Resolves to the
// server's `{ envelope_count, already_held }`, or null when there was nothing to re-wrap.
async function rewrapCase(me, caseId, recipientUserId, targets) {
  const kase = await api.getCase(caseId);
  const objects = [[kase.sealed, { caseId, kind: "case", objectId: caseId }],
    ...kase.attachments.map((a) => [a.sealed, { caseId, kind: "attachment", objectId: a.id }]),
    ...(await api.all(api.messages(caseId))).map((m) => [m.sealed, { caseId, kind: m.kind, objectId: m.id }])];
  const entries = [];
  for (const [sealed, served] of objects) {
    const mine = sealed.envelopes.find((e) => e.device_id === me.deviceId);
    if (!mine) continue;
    entries.push(...(await rewrap({
      headerRaw: unb64(sealed.header),
      manifestRaw: unb64(sealed.manifest),
      signature: unb64(sealed.signature),
      authorSigningPublic: unb64(sealed.author_device.signing_public_key),
      served,
      wrappedKey: unb64(mine.wrapped_key),
      deviceId: me.deviceId,
      keys: me.keys,
    }, targets)));
  }
  if (entries.length === 0) return null;
  const { statement, signature } = await signShare(caseId, me.deviceId, entries, me.keys);
  return api.shareCase(caseId, {
    recipient_user_id: recipientUserId,
    sharer_device_id: me.deviceId,
    statement: b64(statement),
    signature: b64(signature),
    envelopes: entries.map((entry) => ({ object_id: entry.objectId, device_id: entry.deviceId,
      wrapped_key: b64(entry.envelope) })),
  });
}

/**
 * Gives a colleague's devices the case's keys, once the directory proves them (and their safety number is
 * the one pinned, if verified). Idempotent: envelopes a device holds already are left as they are.
 */
export async function shareCase(me, caseId, colleagueId) {
  const targets = recipients(await devicesOf(me, colleagueId));
  if (targets.size === 0) throw new E2EEError("no_recipient_devices");
  return (await rewrapCase(me, caseId, colleagueId, targets)) ?? { envelope_count: 0, already_held: 0 };
}

/**
 * Catch-up: re-wraps, for this user's other active devices (a new one), the keys of the user's open cases
 * that this device holds. Resolves to `{ cases, added }`: cases re-shared and envelopes added.
 */
export async function catchUp(me) {
  const targets = recipients((await ownDevices(me)).filter((d) => d.device_id !== me.deviceId));
  let cases = 0;
  let added = 0;
  if (targets.size === 0) return { cases, added };
  for (const kase of await api.all(api.cases())) {
    if (FINAL_STATUSES.includes(kase.status)) continue;
    const shared = await rewrapCase(me, kase.id, me.userId, targets);
    if (shared?.envelope_count) {
      cases += 1;
      added += shared.envelope_count;
    }
  }
  return { cases, added };
}
