// Registration (profession from the server's list, the identifier kinds it allows, the number checked as it
// is typed, a physician's role and specialties), then the pending screen: the account waits for an
// administrator to verify the id.

import * as api from "../api.js";
import { busy, field, h } from "../dom.js";
import { language, t } from "../i18n.js";
import { loadSpecialties, specialtyName } from "../people.js";
import { professionalIdValid } from "../professional-ids.js";
import { go, showError } from "../shell.js";

// Shown on the pending screen: what was registered, without the password.
let registered = null;

const radio = (name, value, label, checked = false) =>
  h("label", { class: "choice" }, h("input", { type: "radio", name, value, checked }), h("span", {}, label));

// The identifier kinds, in the order the server lists them for the profession, the first one chosen.
const idKindChoices = (kinds) => kinds.map((kind, index) => radio("id_kind", kind, t(`register.${kind}`), index === 0));

export async function registerView() {
  const [specialties, professions] = await Promise.all([loadSpecialties(), api.professions()]);
  const byCode = new Map(professions.map((info) => [info.code, info]));
  const name = h("input", { name: "display_name", required: true, maxlength: "200", autocomplete: "name" });
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "email" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: "12",
    maxlength: "128", autocomplete: "new-password" });
  const profession = h("select", { name: "profession", required: true },
    professions.map((info) => h("option", { value: info.code, selected: info.code === "physician" },
      language() === "fr" ? info.name_fr : info.name_en)));
  const idNumber = h("input", { name: "professional_id", required: true, inputmode: "numeric",
    maxlength: "11", autocomplete: "off" });
  const idCheck = h("span", { class: "hint", id: "id-check", "aria-live": "polite" });
  idNumber.setAttribute("aria-describedby", "id-check");
  // Only physicians hold a case role (asking, or answering in specialties); the other professions take
  // part in peer circles only, so they see neither the role nor the specialties.
  const roles = h("fieldset", { class: "roles" }, h("legend", {}, t("register.role")),
    radio("role", "physician", t("register.physician"), true),
    radio("role", "specialist", t("register.specialist")));
  const picks = h("fieldset", { class: "specialties", hidden: true },
    h("legend", {}, t("register.specialties")),
    h("p", { class: "hint" }, t("register.specialties_hint")),
    [...specialties.keys()].map((code) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "specialty", value: code }), " ", specialtyName(code))));
  const kinds = h("div", { class: "id-kinds" });

  const form = h("form", { class: "card narrow", "aria-label": t("register.title") },
    h("h1", {}, t("register.title")),
    h("p", { class: "lead" }, t("register.lead")),
    field(t("register.name"), name, t("register.name_hint")),
    field(t("register.email"), email),
    field(t("register.password"), password, t("register.password_hint")),
    field(t("register.profession"), profession),
    roles,
    picks,
    h("fieldset", {}, h("legend", {}, t("register.id_kind")), kinds, field(t("register.id"), idNumber), idCheck),
    h("button", { type: "submit" }, t("register.submit")),
    h("p", { class: "switch" }, h("a", { href: "#/login" }, t("register.login"))));

  const chosen = (name) => form.querySelector(`input[name=${name}]:checked`).value;
  const isPhysician = () => profession.value === "physician";
  const checkId = () => {
    const value = idNumber.value.trim();
    const valid = professionalIdValid(chosen("id_kind"), value);
    idCheck.textContent = value.length === 0 ? "" : t(valid ? "register.id_ok" : "register.id_bad");
    idCheck.className = `hint ${valid ? "valid" : "invalid"}`;
    idNumber.setCustomValidity(valid || value.length === 0 ? "" : t("register.id_bad"));
    idNumber.setAttribute("aria-invalid", valid || value.length === 0 ? "false" : "true");
  };
  const showProfession = () => {
    kinds.replaceChildren(...idKindChoices(byCode.get(profession.value).id_kinds));
    roles.hidden = !isPhysician();
    picks.hidden = !isPhysician() || chosen("role") !== "specialist";
    checkId();
  };
  showProfession();
  idNumber.addEventListener("input", checkId);
  profession.addEventListener("change", showProfession);
  form.addEventListener("change", (event) => {
    if (event.target.name === "id_kind") checkId();
    picks.hidden = !isPhysician() || chosen("role") !== "specialist";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const role = isPhysician() ? chosen("role") : null;
    const codes = [...form.querySelectorAll("input[name=specialty]:checked")].map((box) => box.value);
    if (role === "specialist" && codes.length === 0) {
      showError({ code: "need_specialty" });
      return;
    }
    const body = {
      email: email.value.trim(),
      password: password.value,
      display_name: name.value.trim(),
      profession: profession.value,
      professional_id_kind: chosen("id_kind"),
      professional_id: idNumber.value.trim(),
      roles: role ? [role] : [],
      specialties: role === "specialist" ? codes : [],
    };
    busy(form, () => api.register(body))
      .then((user) => {
        registered = user;
        go("#/pending");
      })
      .catch(showError);
  });
  return form;
}

export function pendingView() {
  if (!registered) {
    go("#/register");
    return null;
  }
  const { display_name: name, professional_id_kind: kind, professional_id: id } = registered;
  return h("section", { class: "card narrow", "data-status": registered.status },
    h("h1", {}, t("pending.title")),
    h("p", {}, t("pending.text", { name, kind: kind.toUpperCase(), id })),
    h("p", { class: "hint" }, t("pending.next")),
    h("p", {}, h("a", { class: "button", href: "#/login" }, t("pending.login"))));
}
