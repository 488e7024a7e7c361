// Register this browser as a device: keys are generated here and only their public halves are sent.

import { busy, field, h } from "../dom.js";
import { enrolDevice } from "../clinician.js";
import { showError } from "../shell.js";

export function deviceView(session, onRegistered) {
  const label = h("input", { name: "label", required: true, maxlength: "100",
    value: `Web browser (${navigator.platform || "unknown platform"})` });
  const suite = (value, title, text, checked) =>
    h("label", { class: "choice" },
      h("input", { type: "radio", name: "suite", value, checked }),
      h("span", {}, h("strong", {}, title), h("br"), text));
  const form = h(
    "form",
    { class: "card narrow", "aria-label": "Register this browser" },
    h("h1", {}, "Register this browser"),
    h("p", {}, `Logged in as ${session.user.display_name}. Before reading or writing cases, this browser
      creates its own signing and encryption keys. The private keys stay in this browser; the server
      receives only the public keys, and proof that this browser holds both private keys.`),
    field("Device name", label),
    h("fieldset", {},
      h("legend", {}, "Encryption suite"),
      suite("xwing", "X-Wing (recommended)", "Post-quantum: ML-KEM-768 combined with X25519.", true),
      suite("x25519", "X25519", "For teams whose other devices cannot use X-Wing yet.", false)),
    h("p", { class: "hint" }, "Cases are sealed for devices of both suites: colleagues read them either way."),
    h("button", { type: "submit" }, "Create keys and register"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = form.querySelector("input[name=suite]:checked").value;
    busy(form, () => enrolDevice(session.user, chosen, label.value.trim()))
      .then(onRegistered)
      .catch(showError);
  });
  return form;
}
