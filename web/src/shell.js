// Page-wide helpers the views share: navigation and the error notice (problem+json codes in words).

import { h } from "./dom.js";
import { describe } from "./errors.js";

const notice = document.getElementById("notice");

export function showError(error) {
  notice.replaceChildren(h("strong", {}, "Could not complete this. "), describe(error));
  notice.hidden = false;
  notice.dataset.code = error?.code ?? "error";
  notice.scrollIntoView({ block: "nearest" });
}

export function clearError() {
  notice.hidden = true;
  notice.replaceChildren();
  delete notice.dataset.code;
}

// Navigating to the current hash fires no hashchange, so re-render explicitly then.
export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
