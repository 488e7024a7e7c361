// A circle's page: its clear metadata, the composer, and the posts newest first, each verified and
// decrypted on this device with the epoch key it was sealed under.

import * as circlesApi from "../circles-api.js";
import { grantOwnDevices, loadEpochKeys, openItem, pseudonymKeys } from "../circles.js";
import { busy, h } from "../dom.js";
import { t } from "../i18n.js";
import { loadSpecialties } from "../people.js";
import { loadPseudonym } from "../circle-store.js";
import { moreButton, showError } from "../shell.js";
import { composer, postCard } from "./circle-post.js";
import { audienceText, memberCount } from "./circles.js";

/**
 * What every circle screen needs: the circle, this device's epoch keys opened, the circle's pseudonym
 * keys (to verify pseudonymous posts) and this user's own pseudonym on this device.
 */
export async function circleContext(session, circleId) {
  const [circle, epochs, keys, pseudonym] = await Promise.all([
    circlesApi.circle(circleId),
    loadEpochKeys(session.device, circleId),
    pseudonymKeys(circleId),
    loadPseudonym(session.user.id, circleId),
    loadSpecialties(),
  ]);
  return { session, circle, epochs, pseudonymKeys: keys, pseudonym };
}

export function circleHeading(ctx, ...extra) {
  const { circle } = ctx;
  return [
    h("h1", {}, circle.name),
    circle.description ? h("p", { class: "lead text" }, circle.description) : null,
    h("p", { class: "hint circle-facts" }, [audienceText(circle), memberCount(circle.member_count),
      t(`circles.role_${circle.my_role}`), t("circle.epoch", { epoch: circle.current_epoch })].join(" · ")),
    circle.rotation_required ? h("p", { class: "hint rotation" }, t("circle.rotation_pending")) : null,
    ...extra,
  ];
}

async function postsSection(ctx) {
  const first = await circlesApi.postsPage(ctx.circle.id);
  const open = (items) =>
    Promise.all(items.map((item) => openItem(ctx.session.device, ctx.circle.id, item, ctx.pseudonymKeys)));
  const list = h("div", { class: "posts" }, (await open(first.items)).map((o) => postCard(ctx, o, { link: true })));
  const section = h("section", { class: "circle-posts", "aria-labelledby": "posts-title" },
    h("h2", { id: "posts-title" }, t("circle.posts")),
    first.items.length ? list : h("p", { class: "empty" }, t("circle.no_posts")));
  if (first.next_cursor) {
    section.append(moreButton(t("circle.more"), first.next_cursor, async (cursor) => {
      const page = await circlesApi.postsPage(ctx.circle.id, cursor);
      list.append(...(await open(page.items)).map((o) => postCard(ctx, o, { link: true })));
      return page.next_cursor;
    }));
  }
  return section;
}

// A browser registered after some of the circle's epochs holds no key for them: this one gives its keys.
function grantCard(session, circleId) {
  const result = h("p", { class: "result grant-result", role: "status" });
  const form = h("form", { class: "card grant", "aria-labelledby": "grant-title" },
    h("h2", { id: "grant-title" }, t("circle.grant_title")),
    h("p", {}, t("circle.grant_text")),
    h("button", { type: "submit" }, t("circle.grant_button")),
    result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    result.textContent = "";
    busy(form, () => grantOwnDevices(session.device, circleId))
      .then((added) => {
        result.dataset.added = String(added);
        result.textContent = added ? t("circle.grant_done", { added }) : t("circle.grant_nothing");
      })
      .catch(showError);
  });
  return form;
}

export async function circleView(session, circleId) {
  const ctx = await circleContext(session, circleId);
  return h("section", { class: "circle", "data-circle-id": circleId, "data-epoch": ctx.circle.current_epoch },
    ...circleHeading(ctx, h("p", {}, h("a", { href: `#/circle/${circleId}/members` }, t("circle.members_link")))),
    composer(ctx),
    await postsSection(ctx),
    grantCard(session, circleId));
}
