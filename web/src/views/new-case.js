// Ask a specialty for an opinion: the question and photos are sealed in this browser before upload.

import * as api from "../api.js";
import { busy, field, h } from "../dom.js";
import { createCase } from "../clinician.js";
import { go, showError } from "../shell.js";

async function readPhotos(input) {
  return Promise.all(
    [...input.files].map(async (file) => ({
      name: file.name,
      mediaType: file.type || "application/octet-stream",
      data: new Uint8Array(await file.arrayBuffer()),
    })),
  );
}

export async function newCaseView(session) {
  const specialties = await api.specialties();
  const specialty = h("select", { name: "specialty", required: true },
    specialties.map((s) => h("option", { value: s.code }, s.name)));
  const priority = h("select", { name: "priority" },
    h("option", { value: "routine" }, "Routine (answer within 7 days)"),
    h("option", { value: "urgent" }, "Urgent (answer within 24 hours)"));
  const question = h("textarea", { name: "question", rows: "6", required: true, maxlength: "20000",
    placeholder: "Patient, history, findings, and your question" });
  const photos = h("input", { type: "file", name: "photos", accept: "image/*", multiple: true });
  const consent = h("input", { type: "checkbox", name: "consent", required: true });
  const form = h(
    "form",
    { class: "card", "aria-label": "New case" },
    h("h1", {}, "New case"),
    h("p", { class: "lead" }, `Encrypted in this browser for the chosen specialty's
      ${session.device.keys.suite} devices and your own; the server stores only ciphertext.`),
    field("Specialty", specialty),
    field("Priority", priority),
    field("Clinical question", question),
    field("Photos", photos, "Each photo is encrypted as its own attachment."),
    h("label", { class: "check" }, consent, " The patient consented to this request for a second opinion."),
    h("button", { type: "submit" }, "Encrypt and send"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () =>
      createCase(session.device, {
        specialty: specialty.value,
        priority: priority.value,
        question: question.value.trim(),
        consentAt: new Date().toISOString(),
        photos: await readPhotos(photos),
      }),
    )
      .then((caseId) => go(`#/case/${caseId}`))
      .catch(showError);
  });
  return form;
}
