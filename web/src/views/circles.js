// Peer circles: the circles the user is in, those they may join (open to their profession or specialty,
// or an invitation waiting), and the form that creates one. Names and descriptions are clear metadata.

import * as circlesApi from "../circles-api.js";
import { busy, field, h } from "../dom.js";
import { t } from "../i18n.js";
import { loadSpecialties, specialtyName } from "../people.js";
import { go, showError } from "../shell.js";

export const PROFESSIONS = ["physician", "nurse", "psychologist", "midwife", "pharmacist", "physiotherapist"];

export const memberCount = (n) => (n === 1 ? t("circles.member") : t("circles.members", { n }));

export function audienceText(circle) {
  if (circle.access === "invitation") return t("circles.invitation");
  const { profession, specialty } = circle.audience ?? {};
  if (profession) return t("circles.audience_profession", { profession: t(`profession.${profession}`) });
  if (specialty) return t("circles.audience_specialty", { specialty: specialtyName(specialty) });
  return t("circles.audience_all");
}

function circleCard(circle, action) {
  return h("li", { class: "card circle-card", "data-circle-id": circle.id },
    h("h3", {}, circle.my_status === "active"
      ? h("a", { href: `#/circle/${circle.id}` }, circle.name) : circle.name),
    circle.description ? h("p", { class: "text" }, circle.description) : null,
    h("p", { class: "hint" }, [audienceText(circle), memberCount(circle.member_count),
      circle.my_role ? t(`circles.role_${circle.my_role}`) : null,
      circle.my_status === "invited" ? t("circles.invited") : null].filter(Boolean).join(" · ")),
    action);
}

async function allPages(params) {
  const items = [];
  let cursor = null;
  do {
    const page = await circlesApi.circlesPage({ ...params, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export async function circlesView() {
  await loadSpecialties();
  const [mine, joinable] = await Promise.all([allPages({}), allPages({ joinable: "true" })]);
  const active = mine.filter((circle) => circle.my_status === "active");
  const others = [...mine.filter((circle) => circle.my_status === "invited"),
    ...joinable.filter((circle) => !mine.some((m) => m.id === circle.id))];
  const joinButton = (circle) => {
    const button = h("button", { type: "button", class: "primary", onclick: async () => {
      button.disabled = true;
      try {
        await circlesApi.join(circle.id);
        go(`#/circle/${circle.id}`);
      } catch (error) {
        button.disabled = false;
        showError(error);
      }
    } }, t(circle.my_status === "invited" ? "circles.accept" : "circles.join", { name: circle.name }));
    return button;
  };
  return h("section", { class: "circles" },
    h("h1", {}, t("circles.title")),
    h("p", { class: "lead" }, t("circles.lead")),
    h("p", {}, h("a", { class: "button", href: "#/circles/new" }, t("circles.create"))),
    h("h2", {}, t("circles.mine")),
    active.length ? h("ul", { class: "circle-list mine" }, active.map((circle) => circleCard(circle)))
      : h("p", { class: "empty" }, t("circles.none_mine")),
    h("h2", {}, t("circles.joinable")),
    others.length
      ? h("ul", { class: "circle-list joinable" }, others.map((circle) => circleCard(circle, joinButton(circle))))
      : h("p", { class: "empty" }, t("circles.none_joinable")));
}

export async function newCircleView() {
  const specialties = await loadSpecialties();
  const name = h("input", { name: "name", required: true, maxlength: "120" });
  const description = h("textarea", { name: "description", rows: "3", maxlength: "1000" });
  const radio = (value, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "access", value, checked }), t(`circle_new.access_${value}`));
  const audience = h("select", { name: "audience" },
    h("option", { value: "" }, t("circle_new.audience_all")),
    PROFESSIONS.map((code) => h("option", { value: `profession:${code}` }, t(`profession.${code}`))),
    [...specialties.keys()].map((code) => h("option", { value: `specialty:${code}` }, specialtyName(code))));
  const form = h("form", { class: "card narrow-form" },
    field(t("circle_new.name"), name),
    field(t("circle_new.description"), description),
    h("fieldset", {}, h("legend", {}, t("circle_new.access")), radio("open", true), radio("invitation", false)),
    field(t("circle_new.audience"), audience),
    h("button", { type: "submit" }, t("circle_new.submit")));
  const accessOf = () => form.querySelector("input[name=access]:checked").value;
  form.addEventListener("change", () => (audience.disabled = accessOf() === "invitation"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const access = accessOf();
      const [kind, code] = audience.value.split(":");
      const created = await circlesApi.createCircle({
        name: name.value.trim(),
        description: description.value.trim(),
        access,
        ...(access === "open" && code ? { audience: { [kind]: code } } : {}),
      });
      go(`#/circle/${created.id}`);
    }).catch(showError);
  });
  return h("section", { class: "circle-new" },
    h("h1", {}, t("circle_new.title")),
    h("p", { class: "lead" }, t("circle_new.lead")),
    form);
}
