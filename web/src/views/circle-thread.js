// One discussion: the post, its replies (oldest first), the reply composer, and the co-development session
// opened on the post: its round, deadline, presenter and facilitator, the facilitator's "next round", and
// the composer enabled only when the round takes writing from this member (the server enforces the same).

import * as circlesApi from "../circles-api.js";
import { openItem } from "../circles.js";
import { busy, field, h } from "../dom.js";
import { t, when } from "../i18n.js";
import { go, showError } from "../shell.js";
import { circleContext, circleHeading } from "./circle.js";
import { authorName, composer, isMine, postCard } from "./circle-post.js";

const ROUNDS = ["situation", "clarifying_questions", "ideas", "action_plan", "closed"];
const DEFAULT_DEADLINE_DAYS = 7;

// Who may write in each round (the rules; the server refuses the rest with session_round_*).
const WRITERS = {
  situation: (presenter) => presenter,
  clarifying_questions: () => true,
  ideas: (presenter) => !presenter,
  action_plan: (presenter) => presenter,
  closed: () => false,
};

export function roundAllows(round, presenter) {
  return WRITERS[round]?.(presenter) ?? false;
}

function sessionPanel(ctx, session) {
  const next = ROUNDS[ROUNDS.indexOf(session.round) + 1];
  const steers = session.facilitator.user_id === ctx.session.user.id || ctx.circle.my_role === "moderator";
  const facilitator = session.facilitator.user_id === ctx.session.user.id
    ? t("person.you") : session.facilitator.display_name;
  const advance = next && steers
    ? h("button", { type: "button", class: "primary next-round", onclick: (event) => {
      event.target.disabled = true;
      circlesApi.nextRound(ctx.circle.id, session.id, next).then(() => go(location.hash), (error) => {
        showError(error);
        go(location.hash);
      });
    } }, t("session.next", { round: t(`round.${next}`) }))
    : null;
  return h("section", { class: "card session", "data-round": session.round, "aria-labelledby": "session-title" },
    h("h2", { id: "session-title" }, t("session.title")),
    h("p", {}, h("span", { class: "chip round" }, t("session.round", { round: t(`round.${session.round}`) }))),
    h("ol", { class: "rounds" }, ROUNDS.map((round) => h("li", {
      "aria-current": round === session.round ? "step" : null }, t(`round.${round}`)))),
    h("p", {}, t("session.presenter", { name: authorName(ctx, session.presenter) }), " · ",
      t("session.facilitated", { name: facilitator }), " · ", t("session.deadline_at", { at: when(session.deadline) })),
    h("p", { class: "hint" }, t("session.writers", { rule: t(`rule.${session.round}`) })),
    advance ? h("div", { class: "buttons" }, advance) : null);
}

function openSessionForm(ctx, post, members) {
  const others = members.filter((m) => m.user_id !== ctx.session.user.id);
  const facilitator = h("select", { name: "facilitator", required: true },
    h("option", { value: "" }, t("session.choose_facilitator")),
    others.map((m) => h("option", { value: m.user_id }, m.display_name)));
  const soon = new Date(Date.now() + DEFAULT_DEADLINE_DAYS * 86_400_000);
  const local = new Date(soon.getTime() - soon.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const deadline = h("input", { type: "datetime-local", name: "deadline", required: true, value: local });
  const form = h("form", { class: "card open-session", "aria-labelledby": "open-session-title" },
    h("h2", { id: "open-session-title" }, t("session.open")),
    h("p", { class: "hint" }, t("session.open_lead")),
    field(t("session.facilitator"), facilitator),
    field(t("session.deadline"), deadline),
    h("button", { type: "submit" }, t("session.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => circlesApi.openSession(ctx.circle.id, { post_id: post.id, facilitator_id: facilitator.value,
      deadline: new Date(deadline.value).toISOString() })).then(() => go(location.hash), showError);
  });
  return form;
}

function replyComposer(ctx, post, session) {
  if (!session) return composer(ctx, { parentId: post.id });
  const presenter = isMine(ctx, session.presenter);
  const expired = new Date(session.deadline).getTime() < Date.now();
  const allowed = !expired && roundAllows(session.round, presenter);
  const why = allowed ? null
    : t("session.composer_closed", { rule: expired ? t("error.session_expired") : t(`rule.${session.round}`) });
  return composer(ctx, { parentId: post.id, session: { session_id: session.id, round: session.round },
    disabledWhy: why });
}

export async function circleThreadView(session, circleId, postId) {
  const ctx = await circleContext(session, circleId);
  const thread = await circlesApi.post(circleId, postId);
  const { post } = thread;
  const open = (item) => openItem(session.device, circleId, item, ctx.pseudonymKeys);
  const [opened, replies, coDevelopment, members] = await Promise.all([
    open(post),
    Promise.all(thread.replies.map(open)),
    post.session ? circlesApi.session(circleId, post.session.session_id) : null,
    !post.session && isMine(ctx, post.author) ? circlesApi.members(circleId) : null,
  ]);
  // A reply's id leads to its whole discussion (the server answers with the top-level post).
  return h("section", { class: "circle-thread", "data-circle-id": circleId, "data-post-id": post.id },
    ...circleHeading(ctx, h("p", {}, h("a", { href: `#/circle/${circleId}` }, t("circle.back")))),
    h("h2", { class: "visually-hidden" }, t("thread.title")),
    postCard(ctx, opened),
    coDevelopment ? sessionPanel(ctx, coDevelopment) : null,
    h("section", { class: "replies", "aria-labelledby": "replies-title" },
      h("h2", { id: "replies-title" }, t("thread.replies")),
      replies.length ? replies.map((reply) => postCard(ctx, reply))
        : h("p", { class: "empty" }, t("thread.no_replies"))),
    post.hidden ? null : replyComposer(ctx, post, coDevelopment),
    members ? openSessionForm(ctx, post, members) : null);
}
