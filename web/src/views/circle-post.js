// What the circle page and a discussion share: a post or reply as decrypted here (author as the members
// see it, never the person behind a pseudonym), its reactions, reporting, a moderator's hiding, and the
// composer that posts as oneself or under one's pseudonym in the circle.

import * as circlesApi from "../circles-api.js";
import { writePost } from "../circles.js";
import { busy, field, h } from "../dom.js";
import { bind, discard, draft } from "../drafts.js";
import { describe } from "../errors.js";
import { t, when } from "../i18n.js";
import { go, showError } from "../shell.js";

const REACTIONS = ["helpful", "me_too"];
const REPORT_REASONS = ["patient_identifiable", "disrespectful", "off_topic", "misinformation", "other"];

/** Whether the author of an item (or a session's presenter) is this user, as themself or their pseudonym. */
export function isMine(ctx, author) {
  if (author.kind === "member") return author.user_id === ctx.session.user.id;
  return author.pseudonym_id === ctx.pseudonym?.pseudonymId;
}

export function authorName(ctx, author) {
  if (author.kind === "pseudonym") {
    return isMine(ctx, author) ? t("circle.you_pseudonym", { name: author.name })
      : t("circle.by_pseudonym", { name: author.name });
  }
  return isMine(ctx, author) ? t("person.you") : author.display_name;
}

const refresh = () => go(location.hash);
const failed = (error) => showError(error);

function reactionButtons(ctx, item) {
  return REACTIONS.map((kind) => {
    const pressed = item.my_reactions.includes(kind);
    return h("button", { type: "button", class: "reaction", "aria-pressed": String(pressed), "data-reaction": kind,
      onclick: () => circlesApi.react(ctx.circle.id, item.id, kind, !pressed).then(refresh, failed) },
    t(`circle.${kind}`, { n: item.reactions[kind] ?? 0 }));
  });
}

function reportForm(ctx, item) {
  const reason = h("select", { name: "reason" },
    REPORT_REASONS.map((code) => h("option", { value: code }, t(`report.${code}`))));
  const note = h("input", { name: "note", maxlength: "500" });
  const sent = h("p", { class: "hint", role: "status" });
  const form = h("form", { class: "inline-form" },
    field(t("circle.report_reason"), reason), field(t("circle.report_note"), note),
    h("button", { type: "submit" }, t("circle.report")), sent);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => circlesApi.report(ctx.circle.id, item.id, reason.value, note.value.trim()))
      .then(() => (sent.textContent = t("circle.report_sent")), failed);
  });
  return h("details", { class: "post-tool" }, h("summary", {}, t("circle.report")), form);
}

function hideForm(ctx, item) {
  const reason = h("input", { name: "hide-reason", required: true, maxlength: "500" });
  const form = h("form", { class: "inline-form" }, field(t("circle.hide_reason"), reason),
    h("button", { type: "submit", class: "danger" }, t("circle.hide")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => circlesApi.hide(ctx.circle.id, item.id, reason.value.trim())).then(refresh, failed);
  });
  return h("details", { class: "post-tool" }, h("summary", {}, t("circle.hide")), form);
}

/**
 * One opened item (circles.js `openItem`): `link` makes its title lead to the discussion (the list);
 * replies have no title. Text is inserted as text nodes only.
 */
export function postCard(ctx, opened, { link = false } = {}) {
  const { item } = opened;
  const moderator = ctx.circle.my_role === "moderator";
  const title = opened.ok ? opened.title || t("circle.untitled") : t("circle.untitled");
  const heading = item.parent_id ? null : h("h3", { class: "post-title" }, link
    ? h("a", { href: `#/circle/${ctx.circle.id}/post/${item.id}`,
      "aria-label": t("circle.open_post", { title }) }, title)
    : title);
  const meta = [authorName(ctx, item.author), when(item.created_at)];
  if (!item.parent_id && link) {
    meta.push(item.reply_count === 1 ? t("circle.reply") : t("circle.replies", { n: item.reply_count }));
  }
  if (item.parent_id && item.session) meta.push(t("session.written_in", { round: t(`round.${item.session.round}`) }));
  let body;
  if (opened.ok) body = h("p", { class: "text post-body" }, opened.body);
  else if (opened.error) {
    body = h("p", { class: "verify refused", "data-code": opened.error.code ?? "error" },
      t("circle.unreadable"), " ", describe(opened.error));
  }
  return h("article", { class: `card post${item.hidden ? " hidden-post" : ""}`, "data-post-id": item.id,
    "data-author-kind": item.author.kind },
  heading,
  h("p", { class: "post-meta" }, h("span", { class: "post-author" }, meta[0]), ` · ${meta.slice(1).join(" · ")}`),
  !item.parent_id && item.session
    ? h("p", {}, h("span", { class: "chip round" }, t("session.round", { round: t(`round.${item.session.round}`) })))
    : null,
  item.hidden ? h("p", { class: "hidden-note" },
    t(moderator ? "circle.hidden_moderator" : "circle.hidden", { reason: item.hidden.reason })) : null,
  body,
  opened.ok ? h("p", { class: "verify ok" }, h("span", {}, t("circle.verified"))) : null,
  item.hidden ? null : h("div", { class: "post-actions" }, reactionButtons(ctx, item),
    isMine(ctx, item.author) ? null : reportForm(ctx, item), moderator ? hideForm(ctx, item) : null));
}

/**
 * The composer: a top-level post (with a title) or a reply, as oneself or under the pseudonym (named the
 * first time). `session` and `disabledWhy` serve co-development rounds. What is typed is a tab-memory draft.
 */
export function composer(ctx, { parentId = null, session = null, disabledWhy = null } = {}) {
  const key = `circle:${ctx.circle.id}:${parentId ?? "new"}`;
  const saved = draft(key);
  const idBase = parentId ? "reply" : "post";
  const title = parentId ? null : bind(saved, "title", h("input", { name: "title", maxlength: "200" }));
  const body = bind(saved, "body", h("textarea", { name: "body", rows: "5", maxlength: "20000", required: true }));
  const kept = ctx.pseudonym;
  const choice = (value, label, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: `${idBase}-as`, value, checked }), label);
  const pseudonymName = kept ? null : h("input", { name: "pseudonym", maxlength: "60" });
  const form = h("form", { class: "card composer", "aria-labelledby": `${idBase}-composer-title` },
    h("h2", { id: `${idBase}-composer-title` }, parentId ? t("thread.reply_title") : t("circle.compose")),
    disabledWhy ? h("p", { class: "hint round-rule", role: "note" }, disabledWhy) : null,
    title ? field(t("circle.post_title"), title) : null,
    field(parentId ? t("thread.reply") : t("circle.post_body"), body, t("circle.post_hint")),
    h("fieldset", {}, h("legend", {}, t("circle.as")),
      choice("me", t("circle.as_me", { name: ctx.session.user.display_name }), true),
      choice("pseudonym", kept ? t("circle.as_pseudonym_named", { name: kept.name }) : t("circle.as_pseudonym"),
        false),
      pseudonymName ? field(t("circle.pseudonym_name"), pseudonymName, t("circle.pseudonym_hint")) : null),
    h("button", { type: "submit" }, parentId ? t("thread.send") : t("circle.send")));
  if (disabledWhy) form.querySelectorAll("input, textarea, button").forEach((c) => (c.disabled = true));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      const asPseudonym = form.querySelector(`input[name=${idBase}-as]:checked`).value === "pseudonym";
      await writePost(ctx.session.device, ctx.circle.id, { text: body.value.trim(), title: title?.value.trim() ?? "",
        parentId, asPseudonym, pseudonymName: pseudonymName?.value ?? "", session });
      discard(key);
    }).then(refresh, failed);
  });
  return form;
}
