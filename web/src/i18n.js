// The language of the page: the browser's by default, or the one chosen with the switch (kept in
// localStorage: a display preference, nothing about patients). Strings come from locales/, by key.

import en from "./locales/en.js";
import fr from "./locales/fr.js";

export const LANGUAGES = { en: "English", fr: "Français" };
const CATALOGUES = { en, fr };
const CHOSEN = "confrere.language";

// Outside a page (the crypto modules' tests under Node) there is no storage or navigator: English.
function initial() {
  if (typeof localStorage === "undefined") return "en";
  const chosen = localStorage.getItem(CHOSEN);
  if (CATALOGUES[chosen]) return chosen;
  const preferred = (navigator.languages ?? [navigator.language]).map((tag) => tag.slice(0, 2).toLowerCase());
  return preferred.find((code) => CATALOGUES[code]) ?? "en";
}

let current = initial();
if (typeof document !== "undefined") document.documentElement.lang = current;

export const language = () => current;

export function setLanguage(code) {
  if (!CATALOGUES[code]) return;
  current = code;
  localStorage.setItem(CHOSEN, code);
  document.documentElement.lang = code;
}

/** The string of `key` in the page's language, {placeholders} filled from `values`. */
export function t(key, values = {}, fallback = undefined) {
  const template = CATALOGUES[current][key] ?? fallback ?? en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export const has = (key) => key in CATALOGUES[current];

export function when(iso) {
  return new Date(iso).toLocaleString(current, { dateStyle: "medium", timeStyle: "short" });
}

export function date(iso) {
  return new Date(iso).toLocaleDateString(current, { dateStyle: "long" });
}

/** How long since `iso`, coarsely: minutes, hours or days. */
export function waiting(iso, now = Date.now()) {
  const minutes = Math.max(0, Math.round((now - new Date(iso).getTime()) / 60000));
  if (minutes < 60) return t("time.minutes", { n: minutes });
  if (minutes < 48 * 60) return t("time.hours", { n: Math.round(minutes / 60) });
  return t("time.days", { n: Math.round(minutes / 1440) });
}

export function size(bytes) {
  return `${new Intl.NumberFormat(current, { maximumFractionDigits: 0 }).format(bytes / 1048576)} MB`;
}
