// A user's safety number (docs/e2ee.md section 18.5, as app/crypto/directory.py computes it): a
// fingerprint of their active devices that two colleagues compare, out of band, to know that the keys
// they seal for are those of the person they think. Thirty digits to read aloud and a QR payload.

import { b64, concat, unb64, utf8 } from "./bytes.js";
import { canonicalBytes } from "./canonical.js";

const LABEL = utf8("confrere safety number v1\n");
const GROUPS = 6;
const QR_PREFIX = "confrere-safety:1";

const base64 = (key) => (typeof key === "string" ? b64(unb64(key)) : b64(key));

function base64url(bytes) {
  return b64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * `{ digits, qrPayload }` for `userId` and their devices as the API names them (`device_id` or `id`, `suite`,
 * `signing_public_key`, `kem_public_key`): the same devices give the same number in any order; any device
 * added, removed or re-keyed changes it.
 */
export async function safetyNumber(userId, devices) {
  const listed = devices
    .map((device) => ({
      device: device.device_id ?? device.id,
      kem_public_key: base64(device.kem_public_key),
      signing_public_key: base64(device.signing_public_key),
      suite: device.suite,
    }))
    .sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  const input = concat(LABEL, canonicalBytes({ devices: listed, user: userId }));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", input));
  const groups = [];
  for (let group = 0; group < GROUPS; group += 1) {
    let value = 0n;
    for (const byte of digest.subarray(5 * group, 5 * group + 5)) value = (value << 8n) | BigInt(byte);
    groups.push(String(value % 100000n).padStart(5, "0"));
  }
  return { digits: groups.join(" "), qrPayload: `${QR_PREFIX}:${userId}:${base64url(digest.subarray(0, 32))}` };
}
