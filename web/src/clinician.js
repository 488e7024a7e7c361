// What a clinician's browser does around each API call (mirrors app/client/clinician.py): it seals and
// signs before upload and verifies and opens after download. The server only ever sees ciphertext.

import * as api from "./api.js";
import { b64, fromUtf8, unb64, utf8 } from "./bytes.js";
import { generateDeviceKeys, openSealed, registrationMessage, seal, sign } from "./e2ee.js";
import { parseHeader, parseManifest } from "./canonical.js";
import { E2EEError } from "./errors.js";
import { saveDevice } from "./keystore.js";

const CONTENT_VERSION = 1;

/**
 * Registers the public halves of `keys` (created here unless given, e.g. backed-up keys) with a signed
 * challenge, and keeps the keys.
 */
export async function enrolDevice(user, suite, label, given = null) {
  const keys = given ?? (await generateDeviceKeys(suite));
  const challenge = await api.deviceChallenge();
  const message = registrationMessage(unb64(challenge.challenge), user.id, suite, keys.signingPublic,
    keys.kemPublic);
  const device = await api.registerDevice({
    challenge_id: challenge.challenge_id,
    suite,
    signing_public_key: b64(keys.signingPublic),
    kem_public_key: b64(keys.kemPublic),
    label,
    signature: b64(await sign(keys, message)),
  });
  await saveDevice(user.id, device.id, label, keys);
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

// A sealed object has one suite, named in its header: only devices of this device's suite can be
// recipients (docs/api.md section 3).
function recipients(me, devices) {
  return new Map(
    devices.filter((d) => d.suite === me.keys.suite).map((d) => [d.device_id, unb64(d.kem_public_key)]),
  );
}

async function ownDevices() {
  return (await api.devices())
    .filter((d) => d.revoked_at === null)
    .map((d) => ({ device_id: d.id, suite: d.suite, kem_public_key: d.kem_public_key }));
}

function sealFor(me, caseId, kind, objectId, plaintext, audience) {
  const header = { suite: me.keys.suite, caseId, kind, objectId, authorDeviceId: me.deviceId };
  return seal(plaintext, header, audience, me.keys);
}

/**
 * Seals the case for the specialty's specialists (or one named specialist) and this user's devices,
 * then each photo as its own attachment for the same audience. Returns the new case id.
 */
export async function createCase(me, { specialty, question, patient, priority, consentAt, photos }) {
  const caseId = crypto.randomUUID();
  const specialists = recipients(me, await api.specialtyRecipients(specialty));
  if (specialists.size === 0) throw new E2EEError("no_recipients");
  const audience = new Map([...specialists, ...recipients(me, await ownDevices())]);
  const items = photos.map((photo) => ({ id: crypto.randomUUID(), ...photo }));
  const content = {
    v: CONTENT_VERSION,
    question,
    ...(patient ? { patient } : {}),
    attachments: items.map(({ id, name, mediaType, data }) => ({ id, name, media_type: mediaType,
      size: data.length })),
  };
  const sealed = await sealFor(me, caseId, "case", caseId, utf8(JSON.stringify(content)), audience);
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

// Everyone who may see the case: requester, assignee, named specialist, and while the case waits in the
// queue the specialty's specialists (docs/api.md section 7).
async function participantDevices(me, kase) {
  let devices = await ownDevices();
  const people = new Set([kase.requester_id, kase.assignee_id, kase.named_specialist_id].filter(Boolean));
  for (const userId of people) devices = devices.concat(await api.userDevices(userId));
  if (kase.status === "open" && kase.named_specialist_id === null) {
    devices = devices.concat(await api.specialtyRecipients(kase.specialty));
  }
  return recipients(me, devices);
}

export async function post(me, caseId, kind, text) {
  const kase = await api.getCase(caseId);
  const messageId = crypto.randomUUID();
  const body = utf8(JSON.stringify({ v: CONTENT_VERSION, text }));
  const sealed = await sealFor(me, caseId, kind, messageId, body, await participantDevices(me, kase));
  await api.postMessage(caseId, { id: messageId, kind, sealed: sealedIn(sealed) });
  return messageId;
}

/**
 * Verifies and decrypts an API `sealed` object for this device (docs/api.md section 6). Resolves to
 * `{ plaintext, author, reshared }`; rejects with an E2EEError whose code says what failed.
 */
export async function openObject(me, sealed, ciphertext) {
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
 * refused without hiding the others.
 */
export async function openCase(me, caseId) {
  const kase = await api.getCase(caseId);
  const content = await settle(
    openObject(me, kase.sealed).then((o) => ({ ...o, content: JSON.parse(fromUtf8(o.plaintext)) })),
  );
  const described = new Map((content.ok ? content.content.attachments ?? [] : []).map((a) => [a.id, a]));
  const attachments = await Promise.all(
    kase.attachments.map(async (attachment) => ({
      id: attachment.id,
      name: described.get(attachment.id)?.name ?? attachment.id,
      mediaType: described.get(attachment.id)?.media_type ?? "application/octet-stream",
      ...(await settle(
        api.downloadAttachment(caseId, attachment.id).then((data) => openObject(me, attachment.sealed, data)),
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
        openObject(me, message.sealed).then((o) => ({ ...o, text: JSON.parse(fromUtf8(o.plaintext)).text })),
      )),
    })),
  );
  return { kase, content, attachments, thread };
}
