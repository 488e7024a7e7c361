// Device keys from given seeds (hex), as the known-answer tests and the interoperability runs need them.

import { xwingFromSeed } from "../src/e2ee.js";

export const bytes = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

// RFC 8410 PKCS#8 wrappers: the only way WebCrypto imports a raw Ed25519 or X25519 private key.
const PKCS8 = { Ed25519: "302e020100300506032b657004220420", X25519: "302e020100300506032b656e04220420" };
export const importPrivate = (name, seed, usages) =>
  crypto.subtle.importKey("pkcs8", bytes(PKCS8[name] + seed), { name }, false, usages);

export async function deviceKeys(suite, signingSeed, kemSeed, kemPublicHex) {
  const keys = { suite, signingKey: await importPrivate("Ed25519", signingSeed, ["sign"]) };
  if (suite === "xwing") return { ...keys, ...(await xwingFromSeed(bytes(kemSeed))) };
  const publicKey = await crypto.subtle.importKey("raw", bytes(kemPublicHex), { name: "X25519" }, true, []);
  const privateKey = await importPrivate("X25519", kemSeed, ["deriveBits"]);
  return { ...keys, kemPublic: bytes(kemPublicHex), kemPrivate: { privateKey, publicKey } };
}
