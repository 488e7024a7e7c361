// A safety number screen (docs/e2ee.md section 18.5): a colleague's, to compare with them and mark them
// verified, or one's own, for colleagues to compare. The digits and the QR code are computed and drawn
// here, over the devices the directory log proves; nothing of it comes from the server as such.

import { markColleagueVerified, safetyNumberOf } from "../clinician.js";
import { pinnedNumber } from "../directory.js";
import { busy, h } from "../dom.js";
import { t } from "../i18n.js";
import { displayName, learnNames } from "../people.js";
import { qrSvg } from "../qr.js";
import { go, showError } from "../shell.js";

function status(name, pinned, number) {
  if (pinned === null) return h("p", { class: "unverified" }, t("safety.unverified", { name }));
  if (pinned === number.digits) return h("p", { class: "done verified" }, t("safety.verified", { name }));
  return h("div", { class: "banner changed", role: "alert" },
    h("p", {}, t("safety.changed", { name })),
    h("dl", { class: "numbers" },
      h("dt", {}, t("safety.was")), h("dd", { class: "safety pinned" }, pinned),
      h("dt", {}, t("safety.now")), h("dd", { class: "safety current" }, number.digits)));
}

function verifyForm(session, userId, pinned, number) {
  if (pinned === number.digits) return null;
  const form = h("form", { class: "buttons" },
    h("button", { type: "submit", class: "primary" }, t(pinned === null ? "safety.mark" : "safety.mark_again")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => markColleagueVerified(session.device, userId, number.digits))
      .then(() => go(location.hash))
      .catch(showError);
  });
  return form;
}

export async function safetyView(session, userId) {
  const own = userId === session.user.id;
  await learnNames(own ? [] : [userId]);
  const name = own ? session.user.display_name : displayName(userId);
  const number = await safetyNumberOf(session.device, userId);
  const pinned = own ? null : await pinnedNumber(session.user.id, userId);
  return h("section", { class: "safety-screen", "data-user-id": userId },
    h("h1", {}, own ? t("safety.title_own") : t("safety.title", { name })),
    h("p", { class: "lead" }, own ? t("safety.lead_own") : t("safety.lead", { name })),
    h("section", { class: "card", "aria-labelledby": "number-title" },
      h("h2", { id: "number-title" }, t("safety.digits")),
      h("p", { class: "safety safety-digits" }, number.digits),
      qrSvg(number.qrPayload, own ? t("safety.qr_own") : t("safety.qr", { name })),
      own ? null : status(name, pinned, number),
      own ? null : verifyForm(session, userId, pinned, number)));
}
