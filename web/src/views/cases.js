// The lists: cases the user takes part in, and a specialist's queue. Only clear metadata is listed;
// content is decrypted when a case is opened.

import * as api from "../api.js";
import { h, shortId, when } from "../dom.js";

const STATUS = {
  open: "Open",
  claimed: "Claimed",
  awaiting_info: "Awaiting information",
  answered: "Answered",
  closed: "Closed",
  withdrawn: "Withdrawn",
};

const COLUMNS = ["Case", "Specialty", "Priority", "Status", "Due"];

export const statusLabel = (status) => STATUS[status] ?? status;

function table(items, emptyText) {
  if (items.length === 0) return h("p", { class: "empty" }, emptyText);
  return h(
    "table",
    { class: "cases" },
    h("thead", {}, h("tr", {}, COLUMNS.map((title) => h("th", {}, title)))),
    h(
      "tbody",
      {},
      items.map((kase) =>
        h(
          "tr",
          { "data-case-id": kase.id },
          h("td", {}, h("a", { href: `#/case/${kase.id}` }, `Case ${shortId(kase.id)}`)),
          h("td", {}, kase.specialty),
          h("td", {}, h("span", { class: `chip ${kase.priority}` }, kase.priority)),
          h("td", {}, h("span", { class: `chip status-${kase.status}` }, statusLabel(kase.status))),
          h("td", { class: kase.overdue ? "overdue" : "" }, when(kase.due_at),
            kase.overdue ? " (overdue)" : ""),
        ),
      ),
    ),
  );
}

export async function casesView() {
  const items = await api.all(api.cases());
  return h("section", {}, h("h1", {}, "My cases"),
    h("p", { class: "lead" }, "Cases you asked, answer, or that were shared with you."),
    table(items, "No cases yet. Start one with “New case”."));
}

export async function queueView(session) {
  const items = await api.all(api.queue());
  return h("section", {}, h("h1", {}, "Specialty queue"),
    h("p", { class: "lead" },
      `Open cases waiting in ${session.user.specialties.join(", ")}, earliest due first.`),
    table(items, "The queue is empty."));
}
