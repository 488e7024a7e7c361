// The lists: cases the user takes part in, and a specialist's queue. Each page comes with its cases'
// sealed objects, so the summary (question, patient, photos) is decrypted here from one request a page.

import * as api from "../api.js";
import { h } from "../dom.js";
import { t, waiting, when } from "../i18n.js";
import { learnNames, loadSpecialties, personName, specialtyName } from "../people.js";
import { moreButton } from "../shell.js";
import { summarize } from "../summary.js";

export const statusLabel = (status) => t(`status.${status}`);

// Time waiting counts while a specialist still owes an answer.
const PENDING = ["open", "claimed", "awaiting_info"];
const COLUMNS = ["question", "patient", "photos", "specialty", "priority", "status", "waiting", "due"];

// Narrow screens show each row as a card; each cell carries its column's name for that (style.css).
const cell = (column, ...content) => h("td", { "data-label": t(`list.${column}`) }, ...content);

function row(session, kase, summary) {
  const title = summary ? summary.question : t("list.unreadable");
  return h("tr", { "data-case-id": kase.id },
    cell("question", h("a", { href: `#/case/${kase.id}`, class: summary ? "" : "unreadable" }, title),
      session.user.id === kase.requester_id ? null
        : h("span", { class: "from" }, ` · ${personName(session, kase.requester_id)}`)),
    cell("patient", summary?.patient || "–"),
    cell("photos", summary ? (summary.photos ? String(summary.photos) : t("photos.none")) : "–"),
    cell("specialty", specialtyName(kase.specialty)),
    cell("priority", h("span", { class: `chip ${kase.priority}` }, t(`priority.${kase.priority}`))),
    cell("status", h("span", { class: `chip status-${kase.status}` }, statusLabel(kase.status))),
    cell("waiting", PENDING.includes(kase.status) ? waiting(kase.created_at) : "–"),
    h("td", { "data-label": t("list.due"), class: kase.overdue ? "overdue" : "" }, when(kase.due_at),
      kase.overdue ? ` ${t("overdue")}` : ""));
}

async function rows(session, items) {
  await learnNames(items.map((kase) => kase.requester_id));
  const summaries = await Promise.all(items.map((kase) => summarize(session.device, kase)));
  return items.map((kase, i) => row(session, kase, summaries[i]));
}

async function listView(session, which, title, lead, emptyText) {
  await loadSpecialties();
  const first = await api.listPage(which);
  const section = h("section", { class: "list" }, h("h1", {}, title), h("p", { class: "lead" }, lead));
  if (first.items.length === 0) {
    section.append(h("p", { class: "empty" }, emptyText));
    return section;
  }
  const body = h("tbody", {}, await rows(session, first.items));
  section.append(h("table", { class: "cases" },
    h("thead", {}, h("tr", {}, COLUMNS.map((column) => h("th", { scope: "col" }, t(`list.${column}`))))),
    body));
  if (first.next_cursor) {
    section.append(moreButton(t("list.more"), first.next_cursor, async (cursor) => {
      const page = await api.listPage(which, cursor);
      body.append(...(await rows(session, page.items)));
      return page.next_cursor;
    }));
  }
  return section;
}

export function casesView(session) {
  return listView(session, "cases", t("cases.title"), t("cases.lead"), t("cases.empty"));
}

export async function queueView(session) {
  await loadSpecialties();
  const specialties = session.user.specialties.map(specialtyName).join(", ");
  return listView(session, "queue", t("queue.title"), t("queue.lead", { specialties }), t("queue.empty"));
}
