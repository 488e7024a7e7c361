// Builds web/dist from src/ and public/ with esbuild: one ES module bundle plus the static files.
// Run through `make web` after `npm ci`, so the bundle always comes from package-lock.json.
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

// Files are overwritten in place rather than the folder removed first, so that a server already serving
// web/dist never sees it missing.
mkdirSync(dist, { recursive: true });
cpSync(join(root, "public"), dist, { recursive: true });
// The API docs page (/docs) loads Swagger UI from here, never from a CDN: the installed package's files.
const swagger = join(root, "node_modules", "swagger-ui-dist");
mkdirSync(join(dist, "api-docs"), { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"]) {
  cpSync(join(swagger, file), join(dist, "api-docs", file));
}
await build({
  entryPoints: [join(root, "src", "main.js")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
  // WebCrypto Ed25519 and X25519 are needed: recent Chromium, Firefox and Safari have them.
  target: ["chrome120", "firefox130", "safari17"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
