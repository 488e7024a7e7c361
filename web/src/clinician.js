// What a clinician's browser does around each API call (mirrors app/client/clinician.py): it seals and
// signs before upload and verifies and opens after download. The server only ever sees ciphertext.

import * as api from "./api.js";
import { b64, unb64 } from "./bytes.js";
import { caseContent, messageContent, parseContent } from "./content.js";
import { generateDeviceKeys, openKemChallenge, openSealed, registrationMessage, seal, sign } from "./e2ee.js";
import { parseHeader, parseManifest } from "./canonical.js";
import { E2EEError } from "./errors.js";
import { approveDevice, verifiedDevices } from "./directory.js";
import { saveDevice } from "./keystore.js";

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
export const proved = (me, answer) => verifiedDevices(me.userId, answer.checkpoint, answer.devices);

async function ownDevices(me) {
  const { checkpoint, devices } = await api.provedDevices();
  const active = devices
    .filter((d) => d.revoked_at === null)
    .map((d) => ({ ...d, device_id: d.id }));
  return proved(me, { checkpoint, devices: active });
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
