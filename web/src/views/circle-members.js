// Members and moderation: who is in the circle and their role (clear metadata; pseudonyms are never
// linked to names here), leaving; for moderators, inviting, removing (then rotating the circle's key at
// once, so the removed member reads nothing posted after), promoting, and the reports.

import * as circlesApi from "../circles-api.js";
import { rotate } from "../circles.js";
import { busy, field, h } from "../dom.js";
import { date, t, when } from "../i18n.js";
import { go, showError } from "../shell.js";
import { circleContext, circleHeading } from "./circle.js";

const ACCOUNT_ID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
// A confirmation shown once on the next render (the removal's, after the new key is posted).
let confirmation = null;

function memberRow(ctx, member, moderator) {
  const me = member.user_id === ctx.session.user.id;
  const act = (run, message = null) => (event) => {
    event.target.disabled = true;
    run().then(() => {
      confirmation = message;
      go(location.hash);
    }, (error) => {
      event.target.disabled = false;
      showError(error);
    });
  };
  const remove = async () => {
    await circlesApi.removeMember(ctx.circle.id, member.user_id);
    await rotate(ctx.session.device, ctx.circle.id);
  };
  const tools = moderator && !me ? [
    h("button", { type: "button", class: "danger", onclick: act(remove, t("members.removed")) },
      t("members.remove", { name: member.display_name })),
    member.role === "member"
      ? h("button", { type: "button", onclick: act(() => circlesApi.setRole(ctx.circle.id, member.user_id,
        "moderator")) }, t("members.promote", { name: member.display_name }))
      : null,
  ] : [];
  return h("tr", { "data-user-id": member.user_id },
    h("td", { "data-label": t("members.name") }, me ? t("members.you", { name: member.display_name })
      : member.display_name),
    h("td", { "data-label": t("members.profession") }, t(`professional.${member.profession}`)),
    h("td", { "data-label": t("members.role") }, t(`circles.role_${member.role}`)),
    h("td", { "data-label": t("members.joined") }, member.joined_at ? date(member.joined_at) : "–"),
    h("td", {}, tools.length ? h("div", { class: "buttons member-tools" }, tools) : null));
}

function inviteForm(ctx) {
  const userId = h("input", { name: "user_id", required: true, pattern: ACCOUNT_ID, autocomplete: "off" });
  const form = h("form", { class: "card invite", "aria-labelledby": "invite-title" },
    h("h2", { id: "invite-title" }, t("members.invite")),
    field(t("members.invite_id"), userId, t("members.invite_hint")),
    h("button", { type: "submit" }, t("members.invite_submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => circlesApi.invite(ctx.circle.id, userId.value.trim())).then(() => {
      confirmation = t("members.invited");
      go(location.hash);
    }, showError);
  });
  return form;
}

function reportsCard(ctx, reports) {
  return h("section", { class: "card reports", "aria-labelledby": "reports-title" },
    h("h2", { id: "reports-title" }, t("members.reports")),
    reports.length === 0 ? h("p", { class: "empty" }, t("members.no_reports"))
      : h("ul", {}, reports.map((report) => h("li", { "data-post-id": report.post_id },
        t("members.report_line", { reason: t(`report.${report.reason}`), at: when(report.created_at) }),
        report.note ? h("span", { class: "text" }, ` · ${report.note}`) : null, " · ",
        h("a", { href: `#/circle/${ctx.circle.id}/post/${report.post_id}` }, t("members.report_post"))))));
}

export async function circleMembersView(session, circleId) {
  const ctx = await circleContext(session, circleId);
  const moderator = ctx.circle.my_role === "moderator";
  const [members, reports] = await Promise.all([
    circlesApi.members(circleId),
    moderator ? circlesApi.reports(circleId) : null,
  ]);
  const shown = confirmation;
  confirmation = null;
  const leave = h("button", { type: "button", class: "danger", onclick: (event) => {
    event.target.disabled = true;
    circlesApi.leave(circleId).then(() => go("#/circles"), (error) => {
      event.target.disabled = false;
      showError(error);
    });
  } }, t("circle.leave"));
  return h("section", { class: "circle-members", "data-circle-id": circleId },
    ...circleHeading(ctx, h("p", {}, h("a", { href: `#/circle/${circleId}` }, t("circle.back")))),
    h("h2", {}, t("members.title", { name: ctx.circle.name })),
    h("p", { class: "lead" }, t("members.lead")),
    shown ? h("p", { class: "confirmation", role: "status" }, shown) : null,
    h("table", { class: "cases members" },
      h("thead", {}, h("tr", {}, ["members.name", "members.profession", "members.role", "members.joined"]
        .map((key) => h("th", { scope: "col" }, t(key))),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("members.actions"))))),
      h("tbody", {}, members.map((member) => memberRow(ctx, member, moderator)))),
    moderator ? inviteForm(ctx) : null,
    moderator ? reportsCard(ctx, reports) : null,
    h("p", { class: "buttons" }, leave));
}
