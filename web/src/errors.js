// Errors carry the stable snake_case `code` of docs/api.md section 10 and docs/e2ee.md section 14; the UI
// branches on codes and shows the catalogue's sentences, never the server's English `detail` alone.

import { has, t } from "./i18n.js";

export class E2EEError extends Error {
  constructor(code, message) {
    super(message || code.replaceAll("_", " "));
    this.code = code;
  }
}

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail ? `${status} ${code}: ${detail}` : `${status} ${code}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

// Directory refusals name the device and the check that failed: the sentence is followed by that detail.
const WITH_DETAIL = new Set(["device_not_in_directory", "device_keys_mismatch", "directory_log_forked"]);

// Sentences are in the catalogue (locales/), under "error.<code>".
export function describe(error) {
  if (error?.code && has(`error.${error.code}`)) {
    const sentence = t(`error.${error.code}`, error.values ?? {});
    return WITH_DETAIL.has(error.code) ? t("error.with_detail", { sentence, detail: error.message }) : sentence;
  }
  if (error instanceof ApiError) return t("error.server_refused", { code: error.code });
  return t("error.unexpected", { message: error?.message ?? error });
}
