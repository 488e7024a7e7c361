// The sealed content (docs/e2ee.md section 15, docs/schemas/sealed-content.schema.json): what this client
// writes, and the check of what it reads. Content that does not match is shown as raw text, never dropped.

import { fromUtf8, utf8 } from "./bytes.js";

export const CONTENT_VERSION = 1;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MESSAGE_KINDS = ["message", "info_request", "info_response", "report"];

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const isString = (value, maxLength = Infinity) => typeof value === "string" && value.length <= maxLength;

// The schema's AttachmentRef: unknown fields are ignored, known ones are strictly typed.
function isAttachmentRef(value) {
  return isObject(value) && isString(value.id) && UUID.test(value.id) && isString(value.name, 255) &&
    isString(value.media_type, 255) && Number.isSafeInteger(value.size) && value.size >= 0;
}

function isCaseContent(value) {
  const attachments = value.attachments ?? [];
  return isString(value.question) && Array.isArray(attachments) && attachments.every(isAttachmentRef);
}

function matches(kind, value) {
  if (!isObject(value) || value.v !== CONTENT_VERSION) return false;
  if (kind === "case") return isCaseContent(value);
  return MESSAGE_KINDS.includes(kind) && isString(value.text);
}

/** `{ content, rawText }`: `content` is the parsed JSON when it matches the schema of `kind`, else null. */
export function parseContent(kind, plaintext) {
  const rawText = new TextDecoder("utf-8").decode(plaintext); // invalid bytes become U+FFFD
  let value;
  try {
    value = JSON.parse(fromUtf8(plaintext));
  } catch {
    return { content: null, rawText };
  }
  return { content: matches(kind, value) ? value : null, rawText };
}

export function caseContent(question, attachments) {
  return utf8(JSON.stringify({ v: CONTENT_VERSION, question, attachments }));
}

export function messageContent(text) {
  return utf8(JSON.stringify({ v: CONTENT_VERSION, text }));
}
