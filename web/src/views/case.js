// One case: clear metadata, the decrypted and verified content, photos and thread, and the moves the
// user's part in the case allows. The server says which (the case's `allowed_transitions` and
// `allowed_writes`, docs/api.md section 6): the client keeps no copy of the rules.

import * as api from "../api.js";
import { busy, field, h, shortId, when } from "../dom.js";
import { openCase, post } from "../clinician.js";
import { describe } from "../errors.js";
import { go, showError } from "../shell.js";
import { statusLabel } from "./cases.js";

// The decline reasons of docs/api.md section 8: codes, never free text.
const DECLINE_REASONS = {
  outside_expertise: "Outside my expertise",
  unavailable: "I am not available",
  insufficient_information: "Not enough information to answer",
  other: "Other reason",
};

const KIND = {
  message: "Message",
  info_request: "Information requested",
  info_response: "Information provided",
  report: "Report",
};

// Decrypted photos are shown through blob: URLs, released when the next case view replaces this one.
let objectUrls = [];

function verification(item) {
  if (!item.ok) {
    return h("p", { class: "verify refused", "data-code": item.error.code ?? "error" },
      "Not shown: ", describe(item.error));
  }
  return h("p", { class: "verify ok", title: "Ed25519 manifest signature and HMAC key commitment checked" },
    `Verified: signed by device ${shortId(item.author.device_id)}, key commitment checked`,
    item.reshared ? ", re-shared to this device" : "");
}

function person(kase, session, userId) {
  if (!userId) return "Not claimed yet";
  if (userId === session.user.id) return "You";
  if (userId === kase.requester_id) return `Physician ${shortId(userId)}`;
  if (userId === kase.assignee_id) return `Specialist ${shortId(userId)}`;
  return `Colleague ${shortId(userId)}`;
}

// Signed and verified, but not in the shape this client knows (docs/e2ee.md section 15): shown as it is.
function rawText(text) {
  return h("div", { class: "raw" },
    h("p", { class: "hint" }, "Not in the expected format; shown as raw text:"),
    h("pre", { class: "text raw-text" }, text));
}

function questionText(content) {
  if (content.content === null) return rawText(content.rawText);
  return h("p", { class: "text question" }, content.content.question);
}

function contentCard(opened) {
  const { content, attachments } = opened;
  const photos = attachments.map((attachment) => {
    if (!attachment.ok) return h("figure", { class: "photo" }, verification(attachment));
    const url = URL.createObjectURL(new Blob([attachment.plaintext], { type: attachment.mediaType }));
    objectUrls.push(url);
    const media = attachment.mediaType.startsWith("image/")
      ? h("img", { src: url, alt: attachment.name })
      : h("a", { href: url, download: attachment.name }, `Download ${attachment.name}`);
    const caption = h("figcaption", {}, attachment.name);
    return h("figure", { class: "photo" }, media, caption, verification(attachment));
  });
  return h("article", { class: "card content", "aria-label": "Case content" },
    h("h2", {}, "Clinical question"),
    verification(content),
    content.ok ? questionText(content) : null,
    photos.length ? h("div", { class: "photos" }, photos) : null);
}

function threadCard(kase, session, thread) {
  return h("section", { class: "card thread", "aria-label": "Discussion" },
    h("h2", {}, "Discussion"),
    thread.length === 0 ? h("p", { class: "empty" }, "No messages yet.") : null,
    thread.map((message) =>
      h("article", { class: `message kind-${message.kind}`, "data-kind": message.kind },
        h("header", {},
          h("strong", {}, KIND[message.kind] ?? message.kind),
          ` · ${person(kase, session, message.authorId)} · ${when(message.createdAt)}`),
        message.ok && message.raw ? rawText(message.text) : null,
        message.ok && !message.raw ? h("p", { class: "text" }, message.text) : null,
        verification(message))));
}

async function reloadAfter(error) {
  // The case moved under us (a colleague claimed it, or another move raced): show its current state.
  if (["illegal_transition", "already_claimed"].includes(error.code)) go(location.hash);
  showError(error);
}

function reasonPicker() {
  return h("select", { name: "reason" },
    h("option", { value: "" }, "Choose a reason…"),
    Object.entries(DECLINE_REASONS).map(([code, label]) => h("option", { value: code }, label)));
}

function actionsCard(kase, session) {
  const moves = new Set(kase.allowed_transitions);
  const writes = new Set(kase.allowed_writes);
  const text = h("textarea", { name: "text", rows: "4", maxlength: "20000", "aria-label": "Your message" });
  const form = h("form", { class: "card actions", "aria-label": "Reply" }, h("h2", {}, "Your move"));

  // After a move, show where the case now is: this case again, unless the move handed it away.
  const act = (run, next) => () =>
    busy(form, run).then(() => go(next ?? location.hash)).catch(reloadAfter);
  const button = (label, run, kind = "", next = undefined) =>
    h("button", { type: "button", class: kind, onclick: act(run, next) }, label);
  const move = (action, extra) => () => api.transition(kase.id, action, extra);
  const withText = (run) => async () => {
    const value = text.value.trim();
    if (!value) throw Object.assign(new Error("empty"), { code: "empty_text" });
    await run(value);
  };
  const postThen = (kind, action) =>
    withText(async (value) => {
      const messageId = await post(session.device, kase.id, kind, value);
      if (action) {
        await api.transition(kase.id, action, action === "answer" ? { report_message_id: messageId } : {});
      }
    });

  const buttons = [];
  if (moves.has("claim")) buttons.push(button("Claim this case", move("claim"), "primary"));
  if (writes.has("message")) {
    form.append(text);
    buttons.push(button("Send message", postThen("message")));
  }
  if (moves.has("request_info")) {
    buttons.push(button("Request information", postThen("info_request", "request_info")));
  }
  if (moves.has("answer")) {
    buttons.push(button("Send report and answer", postThen("report", "answer"), "primary"));
  }
  if (moves.has("provide_info")) {
    buttons.push(button("Provide information", postThen("info_response", "provide_info"), "primary"));
  }
  if (moves.has("close")) buttons.push(button("Close case", move("close"), "primary"));
  if (moves.has("withdraw")) buttons.push(button("Withdraw case", move("withdraw"), "danger"));
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
      field("Reason for declining", reason),
      button("Decline case", decline, "danger", "#/queue")),
    h("p", { class: "hint" }, "Declining hands the case back to the specialty queue."));
}

export async function caseView(session, caseId) {
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
  const opened = await openCase(session.device, caseId);
  const { kase } = opened;
  const meta = [
    ["Specialty", kase.specialty],
    ["Priority", kase.priority],
    ["Due", `${when(kase.due_at)}${kase.overdue ? " (overdue)" : ""}`],
    ["Requested by", person(kase, session, kase.requester_id)],
    ["Specialist", person(kase, session, kase.assignee_id)],
    ["Created", when(kase.created_at)],
  ];
  if (kase.closed_at) meta.push([statusLabel(kase.status), when(kase.closed_at)]);
  else if (kase.decline_reason) meta.push(["Last declined", DECLINE_REASONS[kase.decline_reason]]);
  return h("section", { class: "case", "data-case-id": kase.id, "data-status": kase.status },
    h("h1", {}, `Case ${shortId(kase.id)} `,
      h("span", { class: `chip status-${kase.status}` }, statusLabel(kase.status))),
    h("dl", { class: "meta" }, meta.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    contentCard(opened),
    threadCard(kase, session, opened.thread),
    actionsCard(kase, session));
}
