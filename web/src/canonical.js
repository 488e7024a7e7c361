// Canonical JSON and the header and manifest documents (docs/e2ee.md sections 5, 6 and 10).

import { E2EEError } from "./errors.js";
import { fromUtf8, utf8 } from "./bytes.js";

// Version 2 is written; version 1 objects stay readable (docs/e2ee.md section 2).
const VERSIONS = [1, 2];
export const SUITES = ["x25519", "xwing"];
const CONTENT_AEAD = "aes-256-gcm";
const OBJECT_KINDS = ["case", "attachment", "message", "info_request", "info_response", "report"];
const MIN_CIPHERTEXT_SIZE = 12 + 16; // nonce and GCM tag around an empty plaintext

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;

function sortedCopy(value) {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortedCopy(value[key])]),
    );
  }
  return value;
}

// Every string in these documents is drawn from [0-9a-z-] (and standard base64 in a safety number's input),
// so sorted keys and no whitespace are the whole canonical form: JSON.stringify writes no escapes for them.
export function canonicalBytes(obj) {
  return utf8(JSON.stringify(sortedCopy(obj)));
}

// JSON.parse accepts what the format forbids (true, null, floats that happen to be integral survive a
// round trip only in some spellings), so every value is also checked for the allowed types.
function checkValues(value) {
  if (typeof value === "string") return;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) throw new E2EEError("not_canonical", "bad integer");
    return;
  }
  if (Array.isArray(value)) return value.forEach(checkValues);
  if (value !== null && typeof value === "object") return Object.values(value).forEach(checkValues);
  throw new E2EEError("not_canonical", "JSON constants are not allowed");
}

// Parses `raw` and requires it to be exactly its own canonical serialization (duplicates, whitespace,
// escapes, floats and unsorted keys all change the re-serialized bytes).
export function parseCanonical(raw) {
  let obj;
  try {
    obj = JSON.parse(fromUtf8(raw));
  } catch {
    throw new E2EEError("not_canonical", "not valid UTF-8 JSON");
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new E2EEError("not_canonical", "not a JSON object");
  }
  checkValues(obj);
  const again = canonicalBytes(obj);
  if (again.length !== raw.length || !again.every((b, i) => b === raw[i])) {
    throw new E2EEError("not_canonical", "JSON is not in canonical form");
  }
  return obj;
}

export function requireFields(obj, names, code) {
  const keys = Object.keys(obj).sort();
  if (keys.join(",") !== [...names].sort().join(",")) {
    throw new E2EEError(code, `fields must be exactly ${[...names].sort().join(", ")}`);
  }
}

export function requireMatch(value, pattern, name, code) {
  if (typeof value !== "string" || !pattern.test(value)) throw new E2EEError(code, `bad ${name}`);
}

function requireVersion(value, code) {
  if (!VERSIONS.includes(value)) throw new E2EEError(code, "unsupported version");
}

export function requireSuite(suite) {
  if (!SUITES.includes(suite)) throw new E2EEError("unknown_suite", "unknown E2EE suite");
}

// Version 2 (new objects): the header names the content AEAD, each envelope its own KEM suite.
export function headerBytes({ caseId, kind, objectId, authorDeviceId }) {
  return canonicalBytes({
    v: 2,
    aead: CONTENT_AEAD,
    case_id: caseId,
    kind,
    object_id: objectId,
    author_device_id: authorDeviceId,
  });
}

/** `{ v, suite (version 1 only, else null), caseId, kind, objectId, authorDeviceId }`. */
export function parseHeader(raw) {
  const obj = parseCanonical(raw);
  const code = "invalid_header";
  requireVersion(obj.v, code);
  const own = obj.v === 1 ? "suite" : "aead";
  requireFields(obj, ["v", own, "case_id", "kind", "object_id", "author_device_id"], code);
  if (obj.v === 1) requireSuite(obj.suite);
  else if (obj.aead !== CONTENT_AEAD) throw new E2EEError("unknown_suite", "unknown content AEAD");
  for (const name of ["case_id", "object_id", "author_device_id"]) requireMatch(obj[name], UUID, name, code);
  if (!OBJECT_KINDS.includes(obj.kind)) throw new E2EEError(code, "unknown object kind");
  // A case is its own object; any other object with the case's id would alias it.
  if ((obj.kind === "case") !== (obj.object_id === obj.case_id)) {
    throw new E2EEError(code, "object_id must equal case_id exactly when kind is case");
  }
  return {
    v: obj.v,
    suite: obj.v === 1 ? obj.suite : null,
    caseId: obj.case_id,
    kind: obj.kind,
    objectId: obj.object_id,
    authorDeviceId: obj.author_device_id,
  };
}

/** Version 2 manifest; `envelopes` maps device id to `{ sha256, suite }`. */
export function manifestBytes({ headerSha256, ciphertextSha256, ciphertextSize, envelopes, keyCommitment }) {
  return canonicalBytes({
    v: 2,
    header_sha256: headerSha256,
    ciphertext_sha256: ciphertextSha256,
    ciphertext_size: ciphertextSize,
    envelopes,
    key_commitment: keyCommitment,
  });
}

/**
 * `{ v, headerSha256, ciphertextSha256, ciphertextSize, envelopes, keyCommitment }`, where `envelopes` maps
 * device id to `{ sha256, suite }` (in version 1, `suite` is null: the header's suite).
 */
export function parseManifest(raw) {
  const obj = parseCanonical(raw);
  const code = "invalid_manifest";
  requireFields(
    obj,
    ["v", "header_sha256", "ciphertext_sha256", "ciphertext_size", "envelopes", "key_commitment"],
    code,
  );
  requireVersion(obj.v, code);
  for (const name of ["header_sha256", "ciphertext_sha256", "key_commitment"]) {
    requireMatch(obj[name], SHA256_HEX, name, code);
  }
  if (typeof obj.ciphertext_size !== "number" || obj.ciphertext_size < MIN_CIPHERTEXT_SIZE) {
    throw new E2EEError(code, "ciphertext is shorter than nonce and tag");
  }
  const listed = obj.envelopes;
  if (listed === null || typeof listed !== "object" || Array.isArray(listed)) {
    throw new E2EEError(code, "envelopes must be an object");
  }
  const entries = Object.entries(listed);
  if (entries.length === 0) throw new E2EEError(code, "envelopes must not be empty");
  const envelopes = {};
  for (const [deviceId, entry] of entries) {
    requireMatch(deviceId, UUID, "envelope device id", code);
    if (obj.v === 1) {
      requireMatch(entry, SHA256_HEX, "envelope hash", code);
      envelopes[deviceId] = { sha256: entry, suite: null };
      continue;
    }
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new E2EEError(code, "a version 2 envelope entry is an object");
    }
    requireFields(entry, ["sha256", "suite"], code);
    requireMatch(entry.sha256, SHA256_HEX, "envelope hash", code);
    if (typeof entry.suite !== "string") throw new E2EEError(code, "an envelope suite is a string");
    requireSuite(entry.suite);
    envelopes[deviceId] = { sha256: entry.sha256, suite: entry.suite };
  }
  return {
    v: obj.v,
    headerSha256: obj.header_sha256,
    ciphertextSha256: obj.ciphertext_sha256,
    ciphertextSize: obj.ciphertext_size,
    envelopes,
    keyCommitment: obj.key_commitment,
  };
}

/**
 * A share statement (section 12): `entries` of `{ envelopeSha256, headerSha256, objectId, recipientDeviceId }`,
 * written sorted by object id, then recipient device id, as the format requires.
 */
export function shareStatementBytes({ caseId, sharerDeviceId, entries }) {
  const key = (entry) => `${entry.objectId} ${entry.recipientDeviceId}`;
  const sorted = [...entries].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return canonicalBytes({
    v: 1,
    case_id: caseId,
    sharer_device_id: sharerDeviceId,
    entries: sorted.map((entry) => ({
      envelope_sha256: entry.envelopeSha256,
      header_sha256: entry.headerSha256,
      object_id: entry.objectId,
      recipient_device_id: entry.recipientDeviceId,
    })),
  });
}
