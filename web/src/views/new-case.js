// Ask a specialty for an opinion: the question and photos are sealed in this browser before upload.
// What is typed stays in the draft (drafts.js) until the case is sent.

import { createCase } from "../clinician.js";
import { busy, field, h } from "../dom.js";
import { bind, discard, draft } from "../drafts.js";
import { size, t } from "../i18n.js";
import { loadSpecialties, specialtyName } from "../people.js";
import { go, showError } from "../shell.js";

// The server's default attachment limit (Settings.max_attachment_bytes): refused here before sealing.
export const MAX_PHOTO_BYTES = 25 * 1024 * 1024;
const DRAFT = "new-case";

async function readPhotos(files) {
  return Promise.all(
    files.map(async (file) => ({
      name: file.name,
      mediaType: file.type || "application/octet-stream",
      data: new Uint8Array(await file.arrayBuffer()),
    })),
  );
}

function patient(age, sex) {
  const years = age.value === "" ? null : Number(age.value);
  const given = {
    ...(Number.isInteger(years) ? { age_years: years } : {}),
    ...(sex.value ? { sex: sex.value } : {}),
  };
  return Object.keys(given).length ? given : null;
}

export async function newCaseView(session) {
  const specialties = await loadSpecialties();
  const saved = draft(DRAFT);
  const specialty = bind(saved, "specialty", h("select", { name: "specialty", required: true },
    [...specialties.keys()].map((code) => h("option", { value: code }, specialtyName(code)))));
  const priority = bind(saved, "priority", h("select", { name: "priority" },
    h("option", { value: "routine" }, t("new.routine")),
    h("option", { value: "urgent" }, t("new.urgent"))));
  const age = bind(saved, "age", h("input", { type: "number", name: "age", min: "0", max: "130",
    inputmode: "numeric" }));
  const sex = bind(saved, "sex", h("select", { name: "sex" },
    h("option", { value: "" }, t("new.sex_unknown")),
    ["female", "male", "other"].map((value) => h("option", { value }, t(`patient.sex.${value}`)))));
  const question = bind(saved, "question", h("textarea", { name: "question", rows: "6", required: true,
    maxlength: "20000", placeholder: t("new.question_placeholder") }));
  const photos = h("input", { type: "file", name: "photos", accept: "image/*", multiple: true });
  // File objects stay in memory with the draft, and are put back into the input after a re-render.
  if (saved.photos?.length) {
    const transfer = new DataTransfer();
    saved.photos.forEach((file) => transfer.items.add(file));
    photos.files = transfer.files;
  }
  photos.addEventListener("change", () => (saved.photos = [...photos.files]));
  const consent = bind(saved, "consent", h("input", { type: "checkbox", name: "consent", required: true }));
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-title" },
    h("h1", { id: "new-title" }, t("new.title")),
    h("p", { class: "lead" }, t("new.lead")),
    field(t("new.specialty"), specialty),
    field(t("new.priority"), priority),
    h("div", { class: "row" }, field(t("new.age"), age), field(t("new.sex"), sex)),
    field(t("new.question"), question),
    field(t("new.photos"), photos, t("new.photos_hint", { size: size(MAX_PHOTO_BYTES) })),
    h("label", { class: "check" }, consent, " ", t("new.consent")),
    h("button", { type: "submit" }, t("new.submit")),
    h("p", { class: "hint" }, t("new.draft")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = [...photos.files];
    const tooLarge = files.find((file) => file.size > MAX_PHOTO_BYTES);
    if (tooLarge) {
      showError({ code: "photo_too_large", values: { name: tooLarge.name, size: size(MAX_PHOTO_BYTES) } });
      return;
    }
    busy(form, async () =>
      createCase(session.device, {
        specialty: specialty.value,
        priority: priority.value,
        question: question.value.trim(),
        patient: patient(age, sex),
        consentAt: new Date().toISOString(),
        photos: await readPhotos(files),
      }),
    )
      .then((caseId) => {
        discard(DRAFT);
        go(`#/case/${caseId}`);
      })
      .catch(showError);
  });
  return form;
}

