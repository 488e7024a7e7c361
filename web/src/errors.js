// Errors carry the stable snake_case `code` of docs/api.md section 10 and docs/e2ee.md section 14; the UI
// branches on codes and shows the catalogue's sentences, never the server's English `detail` alone.

import { has, t } from "./i18n.js";

// `values` fill the catalogue's sentence; `values.detail`, a catalogue key, says which check failed.
export class E2EEError extends Error {
  constructor(code, message, values = undefined) {
    super(message || code.replaceAll("_", " "));
    this.code = code;
    if (values) this.values = values;
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

// Sentences are in the catalogue (locales/), under "error.<code>"; a directory refusal's detail (which device,
// which check) is a catalogue key too, so that nothing English shows in another language.
export function describe(error) {
  if (error?.code && has(`error.${error.code}`)) {
    const values = error.values ?? {};
    const sentence = t(`error.${error.code}`, values);
    return values.detail ? t("error.with_detail", { sentence, detail: t(values.detail, values) }) : sentence;
  }
  if (error instanceof ApiError) return t("error.server_refused", { code: error.code });
  return t("error.unexpected", { message: error?.message ?? error });
}
