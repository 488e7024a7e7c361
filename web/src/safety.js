// A device's safety number: what two people compare, out of band, to know a key is the one they think.
// SHA-256 of the Ed25519 public key; its first 30 bytes as six groups of five digits (each 5-byte chunk,
// big-endian, modulo 100000), as in docs/web-client.md.

import { sha256, unb64 } from "./bytes.js";

export async function safetyNumber(signingPublic) {
  const raw = typeof signingPublic === "string" ? unb64(signingPublic) : signingPublic;
  const digest = await sha256(raw);
  const groups = [];
  for (let i = 0; i < 30; i += 5) {
    let value = 0n;
    for (const byte of digest.subarray(i, i + 5)) value = (value << 8n) | BigInt(byte);
    groups.push(String(value % 100000n).padStart(5, "0"));
  }
  return groups.join(" ");
}
