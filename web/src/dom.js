// A tiny DOM builder. Text always goes in as text nodes, never as HTML, so decrypted content written by
// colleagues cannot inject markup or script.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), control,
    hint ? h("span", { class: "hint" }, hint) : null);
}

export const shortId = (id) => id.slice(0, 8);

// Disables a form's controls while its async action runs, so a slow seal cannot be submitted twice.
export async function busy(form, action) {
  const controls = [...form.querySelectorAll("button, input, select, textarea")];
  controls.forEach((c) => (c.disabled = true));
  form.classList.add("busy");
  try {
    return await action();
  } finally {
    controls.forEach((c) => (c.disabled = false));
    form.classList.remove("busy");
  }
}
