// One case: clear metadata with names, the decrypted and verified content, photos and thread, the moves
// the user's part in the case allows, and the report ready to print. The server says which moves (the
// case's `allowed_transitions` and `allowed_writes`, docs/api.md section 6): the client keeps no rules.

import * as api from "../api.js";
import { busy, field, h, shortId } from "../dom.js";
import { openCase, post, shareCase } from "../clinician.js";
import { pinnedNumber } from "../directory.js";
import { bind, discard, draft } from "../drafts.js";
import { describe } from "../errors.js";
import { date, t, when } from "../i18n.js";
import { displayName, learnNames, loadSpecialties, personName, specialtyName } from "../people.js";
import { go, showError } from "../shell.js";
import { firstLine, patientText } from "../summary.js";
import { statusLabel } from "./cases.js";

// The decline reasons of docs/api.md section 8: codes, never free text (labels in the catalogue).
const DECLINE_REASONS = ["outside_expertise", "unavailable", "insufficient_information", "other"];

// Decrypted photos are shown through blob: URLs, released when the next case view replaces this one.
let objectUrls = [];

// The verified author in words; the device and a link to the author's safety number behind a disclosure.
function verification(session, item) {
  if (!item.ok) {
    return h("p", { class: "verify refused", "data-code": item.error.code ?? "error" },
      t("verify.refused"), describe(item.error));
  }
  const { author } = item;
  const signed = author.user_id === session.user.id
    ? t("verify.signed_you") : t("verify.signed", { name: displayName(author.user_id) });
  return h("div", { class: "verify ok" },
    h("span", {}, signed, item.reshared ? t("verify.reshared") : ""),
    h("details", { class: "device-details" },
      h("summary", {}, t("verify.details")),
      h("p", {}, t("verify.device", { id: shortId(author.device_id), suite: author.suite })),
      h("p", {}, t("verify.checks")),
      h("p", {}, h("a", { href: `#/safety/${author.user_id}` }, author.user_id === session.user.id
        ? t("safety.title_own") : t("safety.title", { name: displayName(author.user_id) })))));
}

// Signed and verified, but not in the shape this client knows (docs/e2ee.md section 15): shown as it is.
function rawText(text) {
  return h("div", { class: "raw" },
    h("p", { class: "hint" }, t("case.raw_text")),
    h("pre", { class: "text raw-text" }, text));
}

function questionText(content) {
  if (content.content === null) return rawText(content.rawText);
  return h("p", { class: "text question" }, content.content.question);
}

async function contentCard(session, opened) {
  const { content, attachments } = opened;
  const photos = await Promise.all(attachments.map(async (attachment) => {
    if (!attachment.ok) return h("figure", { class: "photo" }, verification(session, attachment));
    const url = URL.createObjectURL(new Blob([attachment.plaintext], { type: attachment.mediaType }));
    objectUrls.push(url);
    const media = attachment.mediaType.startsWith("image/")
      ? h("a", { href: url, target: "_blank", rel: "noopener",
        "aria-label": t("case.photo_open", { name: attachment.name }) },
      h("img", { src: url, alt: attachment.name }))
      : h("a", { href: url, download: attachment.name }, t("case.download", { name: attachment.name }));
    return h("figure", { class: "photo" }, media, h("figcaption", {}, attachment.name),
      verification(session, attachment));
  }));
  const about = content.ok ? patientText(content.content?.patient) : "";
  return h("article", { class: "card content", "aria-labelledby": "content-title" },
    h("h2", { id: "content-title" }, t("case.question")),
    verification(session, content),
    about ? h("p", { class: "patient" }, h("strong", {}, t("case.patient")), " · ", about) : null,
    content.ok ? questionText(content) : null,
    photos.length ? h("div", { class: "photos" }, photos) : null);
}

async function threadCard(session, thread) {
  return h("section", { class: "card thread", "aria-labelledby": "thread-title" },
    h("h2", { id: "thread-title" }, t("case.discussion")),
    thread.length === 0 ? h("p", { class: "empty" }, t("case.no_messages")) : null,
    await Promise.all(thread.map(async (message) =>
      h("article", { class: `message kind-${message.kind}`, "data-kind": message.kind },
        h("header", {},
          h("strong", {}, t(`kind.${message.kind}`)),
          ` · ${personName(session, message.authorId)} · ${when(message.createdAt)}`),
        message.ok && message.raw ? rawText(message.text) : null,
        message.ok && !message.raw ? h("p", { class: "text" }, message.text) : null,
        verification(session, message)))));
}

async function reloadAfter(error) {
  // The case moved under us (a colleague claimed it, or another move raced): show its current state.
  if (["illegal_transition", "already_claimed"].includes(error.code)) go(location.hash);
  showError(error);
}

function reasonPicker() {
  return h("select", { name: "reason" },
    h("option", { value: "" }, t("move.choose_reason")),
    DECLINE_REASONS.map((code) => h("option", { value: code }, t(`reason.${code}`))));
}

function actionsCard(kase, session) {
  const moves = new Set(kase.allowed_transitions);
  const writes = new Set(kase.allowed_writes);
  const draftKey = `message:${kase.id}`;
  const text = bind(draft(draftKey), "text", h("textarea", { name: "text", rows: "4", maxlength: "20000",
    "aria-label": t("move.message") }));
  const form = h("form", { class: "card actions", "aria-labelledby": "move-title" },
    h("h2", { id: "move-title" }, t("move.title")));

  // After a move, show where the case now is: this case again, unless the move handed it away.
  const act = (run, next) => () =>
    busy(form, run).then(() => go(next ?? location.hash)).catch(reloadAfter);
  const button = (key, run, kind = "", next = undefined) =>
    h("button", { type: "button", class: kind, onclick: act(run, next) }, t(key));
  const move = (action, extra) => () => api.transition(kase.id, action, extra);
  const withText = (run) => async () => {
    const value = text.value.trim();
    if (!value) throw Object.assign(new Error("empty"), { code: "empty_text" });
    await run(value);
    discard(draftKey);
  };
  const postThen = (kind, action) =>
    withText(async (value) => {
      const messageId = await post(session.device, kase.id, kind, value);
      if (action) {
        await api.transition(kase.id, action, action === "answer" ? { report_message_id: messageId } : {});
      }
    });

  const buttons = [];
  if (moves.has("claim")) buttons.push(button("move.claim", move("claim"), "primary"));
  if (writes.has("message")) {
    form.append(text);
    buttons.push(button("move.send", postThen("message")));
  }
  if (moves.has("request_info")) buttons.push(button("move.request_info", postThen("info_request", "request_info")));
  if (moves.has("answer")) buttons.push(button("move.answer", postThen("report", "answer"), "primary"));
  if (moves.has("provide_info")) {
    buttons.push(button("move.provide_info", postThen("info_response", "provide_info"), "primary"));
  }
  if (moves.has("close")) buttons.push(button("move.close", move("close"), "primary"));
  if (moves.has("withdraw")) buttons.push(button("move.withdraw", move("withdraw"), "danger"));
  if (buttons.length === 0 && !moves.has("decline")) return null;
  if (buttons.length) form.append(h("div", { class: "buttons" }, buttons));
  if (moves.has("decline")) form.append(declineRow(kase, button));
  return form;
}

// Handing the case back to the specialty queue, with one of the API's reason codes.
function declineRow(kase, button) {
  const reason = reasonPicker();
  const decline = async () => {
    if (!reason.value) throw Object.assign(new Error("no reason"), { code: "reason_required" });
    await api.transition(kase.id, "decline", { reason: reason.value });
  };
  return h("div", { class: "decline" },
    h("div", { class: "buttons" },
      field(t("move.reason"), reason),
      button("move.decline", decline, "danger", "#/queue")),
    h("p", { class: "hint" }, t("move.decline_hint")));
}

// Who takes part (the case's participants), each with their safety number, and for a participant the
// re-share: a colleague picked among those the server would let receive the case (its requester, a named
// specialist, the specialists of its specialty: docs/api.md section 7), whose devices the directory
// proves (and whose safety number is the one pinned, if verified) before anything is sealed for them.
async function participantsCard(session, kase) {
  const users = kase.participants.users;
  const taking = users.some((user) => user.user_id === session.user.id);
  const allowed = new Set([kase.requester_id, kase.named_specialist_id].filter(Boolean));
  if (taking) {
    (await api.specialtyRecipients(kase.specialty)).devices.forEach((device) => allowed.add(device.user_id));
  }
  allowed.delete(session.user.id);
  await learnNames([...allowed, ...users.map((user) => user.user_id)]);
  const verified = new Set();
  for (const userId of [...allowed, ...users.map((user) => user.user_id)]) {
    if (userId !== session.user.id && (await pinnedNumber(session.user.id, userId)) !== null) verified.add(userId);
  }
  const card = h("section", { class: "card participants no-print", "aria-labelledby": "participants-title" },
    h("h2", { id: "participants-title" }, t("share.title")),
    h("ul", { class: "people" }, users.map((user) =>
      h("li", { "data-user-id": user.user_id },
        h("strong", {}, personName(session, user.user_id)),
        ` · ${user.roles.map((role) => t(`role.${role}`)).join(", ")} · `,
        verified.has(user.user_id) ? h("span", { class: "chip verified" }, t("share.verified")) : null,
        verified.has(user.user_id) ? " " : null,
        h("a", { href: `#/safety/${user.user_id}`, "aria-label": user.user_id === session.user.id
          ? t("safety.title_own") : t("safety.title", { name: displayName(user.user_id) }) },
        t("share.safety"))))));
  if (taking) card.append(shareForm(session, kase, [...allowed], verified));
  return card;
}

function shareForm(session, kase, allowed, verified) {
  const result = h("p", { class: "result", role: "status" });
  if (allowed.length === 0) return h("p", { class: "hint" }, t("share.none"));
  const colleague = h("select", { name: "colleague" },
    h("option", { value: "" }, t("share.choose")),
    allowed.map((userId) => h("option", { value: userId },
      verified.has(userId) ? t("share.option_verified", { name: displayName(userId) }) : displayName(userId))));
  const form = h("form", { class: "share" },
    h("h3", {}, t("share.colleague")),
    h("p", { class: "hint" }, t("share.hint", { specialty: specialtyName(kase.specialty) })),
    h("div", { class: "buttons" }, field(t("share.colleague_label"), colleague),
      h("button", { type: "submit" }, t("share.submit"))),
    result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    result.textContent = "";
    const chosen = colleague.value;
    if (!chosen) return showError({ code: "choose_colleague" });
    return busy(form, () => shareCase(session.device, kase.id, chosen))
      .then(({ envelope_count: added, already_held: held }) => {
        result.textContent = t("share.done", { name: displayName(chosen), added, held });
      })
      .catch(showError);
  });
  return form;
}

// Items sealed before this browser was registered: say how to get their keys here.
function noKeysBanner(opened) {
  const items = [opened.content, ...opened.attachments, ...opened.thread];
  if (!items.some((item) => !item.ok && item.error.code === "no_envelope")) return null;
  return h("div", { class: "banner no-keys", role: "status" }, h("p", {}, t("case.no_keys")));
}

// Shown only on paper (style.css @media print): what the patient record needs around the report.
function printHeader(kase, summary) {
  return h("header", { class: "print-only" },
    h("p", { class: "print-title" }, t("case.report_heading")),
    h("p", {}, `${specialtyName(kase.specialty)} · ${summary}`),
    kase.assignee_id ? h("p", {}, t("case.report_by", { name: displayName(kase.assignee_id) })) : null);
}

export async function caseView(session, caseId) {
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
  const [opened] = await Promise.all([openCase(session.device, caseId), loadSpecialties()]);
  const { kase } = opened;
  const authors = [opened.content, ...opened.attachments, ...opened.thread]
    .filter((item) => item.ok).map((item) => item.author.user_id);
  await learnNames([kase.requester_id, kase.assignee_id, kase.named_specialist_id, ...authors,
    ...opened.thread.map((message) => message.authorId)].filter(Boolean));
  const who = (userId) => (userId ? personName(session, userId) : t("case.unclaimed"));
  const meta = [
    [t("case.specialty"), specialtyName(kase.specialty)],
    [t("case.priority"), t(`priority.${kase.priority}`)],
    [t("case.due"), `${when(kase.due_at)}${kase.overdue ? ` ${t("overdue")}` : ""}`],
    [t("case.requested_by"), who(kase.requester_id)],
    [t("case.specialist"), who(kase.assignee_id)],
    [t("case.created"), date(kase.created_at)],
  ];
  if (kase.closed_at) meta.push([statusLabel(kase.status), when(kase.closed_at)]);
  else if (kase.decline_reason) meta.push([t("case.last_declined"), t(`reason.${kase.decline_reason}`)]);
  const summary = opened.content.ok && opened.content.content
    ? firstLine(opened.content.content.question) : `#${shortId(kase.id)}`;
  const hasReport = opened.thread.some((message) => message.kind === "report" && message.ok);
  return h("section", { class: "case", "data-case-id": kase.id, "data-status": kase.status },
    printHeader(kase, summary),
    h("h1", {}, `${t("case.title", { specialty: specialtyName(kase.specialty), summary })} `,
      h("span", { class: `chip status-${kase.status}` }, statusLabel(kase.status))),
    h("dl", { class: "meta" }, meta.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    hasReport
      ? h("p", { class: "no-print" }, h("button", { type: "button", class: "print", onclick: () => window.print() },
        t("case.print")))
      : null,
    noKeysBanner(opened),
    await contentCard(session, opened),
    await threadCard(session, opened.thread),
    actionsCard(kase, session),
    await participantsCard(session, kase));
}
