// Log in with e-mail, password and, for accounts that enabled it, a TOTP code.

import * as api from "../api.js";
import { busy, field, h } from "../dom.js";
import { t } from "../i18n.js";
import { showError } from "../shell.js";

export function loginView(onLoggedIn, sessionEnded = false) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password",
    required: true });
  const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9]{6}", maxlength: "6" });
  const form = h(
    "form",
    { class: "card narrow", "aria-label": t("login.title") },
    h("h1", {}, t("login.title")),
    h("p", { class: "lead" }, sessionEnded ? t("login.return") : t("login.lead")),
    field(t("login.email"), email),
    field(t("login.password"), password),
    field(t("login.totp"), totp, t("login.totp_hint")),
    h("button", { type: "submit" }, t("login.submit")),
    h("p", { class: "switch" }, h("a", { href: "#/register" }, t("login.register"))),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => api.login(email.value.trim(), password.value, totp.value.trim() || null))
      .then(onLoggedIn)
      .catch(showError);
  });
  return form;
}
