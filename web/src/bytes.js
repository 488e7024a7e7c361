// Byte helpers shared by the crypto and API layers: UTF-8, hex, strict base64, framing, SHA-256.

const encoder = new TextEncoder();
// fatal: invalid UTF-8 in a signed document must be refused, not silently repaired.
const decoder = new TextDecoder("utf-8", { fatal: true });

export const utf8 = (text) => encoder.encode(text);
export const fromUtf8 = (bytes) => decoder.decode(bytes);

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function u32be(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

// `label || (u32be(len(f)) || f)*`: the binary framing of HPKE info and the registration message.
export function lengthPrefixed(label, ...fields) {
  return concat(utf8(label), ...fields.flatMap((f) => [u32be(f.length), f]));
}

// The API carries binary values as standard base64 with padding (docs/api.md section 1).
export function b64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function unb64(text) {
  if (typeof text !== "string" || !B64.test(text)) {
    throw new TypeError("not standard padded base64");
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

// Compares without an early exit, so timing does not reveal where two MACs differ.
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
