// What a list shows of a case's sealed content, decrypted and verified on this device: the question's
// first line, the patient's age and sex when given, and the number of photos.

import { openObject } from "./clinician.js";
import { parseContent } from "./content.js";
import { t } from "./i18n.js";

const SEXES = ["female", "male", "other"];

export function firstLine(question) {
  return (question ?? "").trim().split("\n", 1)[0].trim();
}

/** "58 y, man" / "homme, 58 ans", or "" when the content gives neither. */
export function patientText(patient) {
  const age = Number.isInteger(patient?.age_years) ? patient.age_years : null;
  const sex = SEXES.includes(patient?.sex) ? t(`patient.sex.${patient.sex}`) : null;
  if (age !== null && sex) return t("patient.age_sex", { age, sex });
  if (age !== null) return t("patient.age", { age });
  return sex ?? "";
}

/**
 * The case content of a list item (`{ content, rawText }`, as parseContent), or null when this device cannot
 * open it.
 */
async function openContent(device, item) {
  if (!item.sealed) return null;
  try {
    const opened = await openObject(device, item.sealed, { caseId: item.id, kind: "case", objectId: item.id });
    return parseContent("case", opened.plaintext);
  } catch {
    return null;
  }
}

export async function summarize(device, item) {
  const opened = await openContent(device, item);
  if (!opened) return null;
  // Content in a shape this client does not know is summarized by its raw text's first line.
  const content = opened.content ?? { question: opened.rawText };
  return {
    question: firstLine(content.question) || t("list.no_question"),
    patient: patientText(content.patient),
    photos: (content.attachments ?? []).length,
  };
}
