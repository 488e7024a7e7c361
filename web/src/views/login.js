// Log in with e-mail, password and, for accounts that enabled it, a TOTP code.

import * as api from "../api.js";
import { busy, field, h } from "../dom.js";
import { showError } from "../shell.js";

export function loginView(onLoggedIn) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password",
    required: true });
  const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9]{6}", maxlength: "6" });
  const form = h(
    "form",
    { class: "card narrow", "aria-label": "Log in" },
    h("h1", {}, "Log in"),
    h("p", { class: "lead" }, "Second opinions between clinicians, end-to-end encrypted in this browser."),
    field("E-mail", email),
    field("Password", password),
    field("Authenticator code", totp, "Six digits, if your account uses two-factor authentication."),
    h("button", { type: "submit" }, "Log in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => api.login(email.value.trim(), password.value, totp.value.trim() || null))
      .then(onLoggedIn)
      .catch(showError);
  });
  return form;
}
