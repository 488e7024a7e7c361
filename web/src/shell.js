// Page-wide helpers the views share: navigation and the error notice (problem+json codes in words).

import { h } from "./dom.js";
import { describe } from "./errors.js";
import { t } from "./i18n.js";

const notice = document.getElementById("notice");

// Codes after which only a new login helps (the refresh in api.js has already been tried).
export const SESSION_ENDED = ["unauthenticated", "invalid_token", "invalid_refresh_token", "refresh_token_reused"];

let sessionEnded = () => {};

/** main.js says what to do when a session ends under a form: log in again, then come back to it. */
export function onSessionEnded(handler) {
  sessionEnded = handler;
}

/** "Load more" under a cursor-paged list: `loadMore(cursor)` appends the next page and returns its cursor. */
export function moreButton(label, cursor, loadMore) {
  const more = h("button", { type: "button", class: "more" }, label);
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      cursor = await loadMore(cursor);
      more.hidden = !cursor;
    } catch (error) {
      showError(error);
    } finally {
      more.disabled = false;
    }
  });
  return more;
}

export function showError(error) {
  notice.replaceChildren(h("strong", {}, t("notice.prefix")), describe(error));
  // A verified colleague's devices changed: the way forward is to compare the numbers again.
  if (error?.code === "safety_number_changed" && error.values?.user) {
    notice.append(" ", h("a", { href: `#/safety/${error.values.user}` }, t("safety.compare_again")));
  }
  notice.hidden = false;
  notice.dataset.code = error?.code ?? "error";
  notice.scrollIntoView({ block: "nearest" });
  if (SESSION_ENDED.includes(error?.code)) sessionEnded();
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
