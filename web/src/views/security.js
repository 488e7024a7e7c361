// This browser's device, the user's safety number, catching up the user's other devices on their open
// cases (docs/e2ee.md section 18.6), and two-factor authentication (TOTP) with its QR code drawn here.

import * as api from "../api.js";
import { catchUp } from "../clinician.js";
import { busy, field, h } from "../dom.js";
import { t } from "../i18n.js";
import { qrSvg } from "../qr.js";
import { go, showError } from "../shell.js";

// A new device of this user holds no key for what was sealed before it: this browser re-wraps them.
function catchUpCard(session) {
  const result = h("p", { class: "result", role: "status" });
  const form = h("form", { class: "card catch-up", "aria-labelledby": "catch-up-title" },
    h("h2", { id: "catch-up-title" }, t("catchup.title")),
    h("p", {}, t("catchup.text")),
    h("button", { type: "submit" }, t("catchup.button")),
    result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    result.textContent = "";
    busy(form, () => catchUp(session.device))
      .then(({ cases, added }) => {
        result.textContent = added ? t("catchup.done", { added, cases }) : t("catchup.nothing");
      })
      .catch(showError);
  });
  return form;
}

function totpCard(session) {
  const card = h("section", { class: "card totp", "aria-labelledby": "totp-title" },
    h("h2", { id: "totp-title" }, t("totp.title")));
  if (session.user.totp_enabled) {
    card.append(h("p", { class: "done" }, t("totp.is_on")));
    return card;
  }
  const start = h("button", { type: "button", class: "primary" }, t("totp.start"));
  start.addEventListener("click", () =>
    api.startTotp().then((enrolment) => card.replaceChildren(...enrolForm(session, enrolment))).catch(showError));
  card.append(start);
  return card;
}

function enrolForm(session, { secret, otpauth_uri: uri }) {
  const code = h("input", { name: "totp_code", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9]{6}", maxlength: "6", required: true });
  const form = h("form", {},
    field(t("totp.code"), code),
    h("div", { class: "buttons" },
      h("button", { type: "submit" }, t("totp.confirm")),
      h("a", { href: "#/cases" }, t("totp.later"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => api.confirmTotp(code.value.trim()))
      .then(() => {
        session.user = { ...session.user, totp_enabled: true };
        go("#/security");
      })
      .catch(showError);
  });
  return [
    h("h2", { id: "totp-title" }, t("totp.title")),
    h("p", {}, t("totp.lead")),
    qrSvg(uri, t("totp.qr")),
    h("p", { class: "hint" }, t("totp.manual"), " ", h("code", { class: "secret" }, secret)),
    form,
  ];
}

export function securityView(session) {
  const { device } = session;
  return h("section", { class: "security" },
    h("h1", {}, t("security.title")),
    h("section", { class: "card", "aria-labelledby": "this-device" },
      h("h2", { id: "this-device" }, t("security.device", { label: device.label, suite: device.keys.suite })),
      h("p", {}, h("a", { href: `#/safety/${session.user.id}` }, t("security.safety_link"))),
      h("p", { class: "hint" }, t("security.safety_hint"))),
    catchUpCard(session),
    totpCard(session));
}
