// What the user is typing, kept in this tab's memory only (a module-level map, never storage): it
// survives an expired session (the login screen comes and goes without a page load), a lost connection
// and a language switch; a reload or a closed tab ends it, and nothing typed reaches the disk in clear.

const drafts = new Map();

export function draft(key) {
  if (!drafts.has(key)) drafts.set(key, {});
  return drafts.get(key);
}

export function discard(key) {
  drafts.delete(key);
}

/** Keeps a control's value in the draft as it is typed, and puts the kept value back. */
export function bind(saved, name, control) {
  const property = control.type === "checkbox" ? "checked" : "value";
  if (name in saved) control[property] = saved[name];
  control.addEventListener("input", () => (saved[name] = control[property]));
  control.addEventListener("change", () => (saved[name] = control[property]));
  return control;
}
