// The browser's key backup code (src/backup.js) under Node, for tests/test_key_backup.py: reads one JSON
// request on stdin, seals or opens a backup, and writes one JSON answer on stdout.

import { b64, unb64 } from "../src/bytes.js";
import { keysFromSecrets, openBackup, sealBackup } from "../src/backup.js";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);

if (request.op === "seal") {
  const devices = Object.fromEntries(Object.entries(request.devices).map(([id, d]) => [id, {
    suite: d.suite, signingPrivate: unb64(d.signing_private), kemPrivate: unb64(d.kem_private),
  }]));
  const blob = await sealBackup(request.passphrase, request.user_id, devices);
  process.stdout.write(JSON.stringify({ blob: b64(blob) }));
} else {
  try {
    const devices = await openBackup(request.passphrase, request.user_id, unb64(request.blob));
    const opened = {};
    for (const [id, s] of Object.entries(devices)) {
      const keys = await keysFromSecrets(s.suite, s.signingPrivate, s.kemPrivate);
      opened[id] = { suite: s.suite, signing_public: b64(keys.signingPublic), kem_public: b64(keys.kemPublic) };
    }
    process.stdout.write(JSON.stringify({ devices: opened }));
  } catch (error) {
    process.stdout.write(JSON.stringify({ error: error.code ?? String(error) }));
  }
}
