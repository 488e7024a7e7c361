// Names, not ids: colleagues' display names (GET /v1/clinicians, cached for the page's life) and
// specialty names (the server's, or the catalogue's translation).

import * as api from "./api.js";
import { t } from "./i18n.js";

const names = new Map();
let specialties = null;
const LOOKUP_MAX = 100;

/** Fetches the names of the ids not known yet, in as few requests as the lookup's size allows. */
export async function learnNames(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !names.has(id));
  for (let i = 0; i < missing.length; i += LOOKUP_MAX) {
    const chunk = missing.slice(i, i + LOOKUP_MAX);
    const found = await api.clinicianNames(chunk);
    chunk.forEach((id) => names.set(id, null));
    found.forEach((person) => names.set(person.id, person));
  }
}

/** "You", the colleague's display name, or "A colleague" when the directory does not list them. */
export function personName(session, userId) {
  if (userId === session.user.id) return t("person.you");
  return displayName(userId);
}

export const displayName = (userId) => names.get(userId)?.display_name ?? t("person.unknown");

export async function loadSpecialties() {
  specialties ??= new Map((await api.specialties()).map((s) => [s.code, s]));
  return specialties;
}

/** After loadSpecialties(): the specialty's name in the page's language (the server's in English). */
export function specialtyName(code) {
  return t(`specialty.${code}`, {}, specialties?.get(code)?.name ?? code);
}
