// The app shell: session state, the hash router, navigation, the language switch and the error notice.

import * as api from "./api.js";
import { approveDevice, unknownDevices } from "./directory.js";
import { h, shortId } from "./dom.js";
import { describe } from "./errors.js";
import { LANGUAGES, language, setLanguage, t, when } from "./i18n.js";
import { loadDevice } from "./keystore.js";
import { clearError, go, onSessionEnded, SESSION_ENDED, showError } from "./shell.js";
import { caseView } from "./views/case.js";
import { circleView } from "./views/circle.js";
import { circleMembersView } from "./views/circle-members.js";
import { circleThreadView } from "./views/circle-thread.js";
import { circlesView, newCircleView } from "./views/circles.js";
import { casesView, queueView } from "./views/cases.js";
import { deviceView } from "./views/device.js";
import { loginView } from "./views/login.js";
import { newCaseView } from "./views/new-case.js";
import { pendingView, registerView } from "./views/register.js";
import { safetyView } from "./views/safety.js";
import { securityView } from "./views/security.js";

const main = document.getElementById("main");
const MONITOR_MINUTES = 5;
const nav = document.getElementById("nav");
const skip = document.querySelector(".skip");
// The router owns the hash, so the skip link moves focus itself.
skip.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

// Filled once per login: the account (GET /v1/me) and this browser's device for it.
const session = { user: null, device: null };
// Where to come back to after logging in again: the form whose session ended keeps its draft (drafts.js).
let returnTo = null;

async function signOut() {
  await api.logout().catch(() => {});
  session.user = session.device = null;
  stopMonitoring();
  returnTo = null;
  go("#/login");
}

function sessionOver() {
  session.user = session.device = null;
  stopMonitoring();
  if (!location.hash.startsWith("#/login")) returnTo = location.hash;
  go("#/login");
}

onSessionEnded(sessionOver);

function languageSwitch() {
  const select = h("select", { id: "language", "aria-label": t("nav.language"), onchange: () => {
    setLanguage(select.value);
    go(location.hash);
  } }, Object.entries(LANGUAGES).map(([code, name]) =>
    h("option", { value: code, lang: code, selected: code === language() }, name)));
  return select;
}

// Nurses, psychologists and the other professions use circles; only physicians have case roles.
const takesCases = (user) => user.roles.includes("physician") || user.roles.includes("specialist");
const home = () => (session.user && !takesCases(session.user) ? "#/circles" : "#/cases");

function renderNav() {
  const { user, device } = session;
  skip.textContent = t("skip");
  nav.setAttribute("aria-label", t("nav.main"));
  const logout = user ? h("button", { class: "link", type: "button", onclick: signOut }, t("nav.logout")) : null;
  if (!user || !device) {
    nav.replaceChildren(h("span", { class: "spacer" }), languageSwitch(), logout ?? "");
    return;
  }
  const links = [
    ...(takesCases(user) ? [["#/cases", t("nav.cases")]] : []),
    ...(user.roles.includes("specialist") ? [["#/queue", t("nav.queue")]] : []),
    ...(takesCases(user) ? [["#/new", t("nav.new")]] : []),
    ["#/circles", t("nav.circles")],
    ["#/security", t("nav.security")],
  ];
  nav.replaceChildren(
    ...links.map(([href, text]) =>
      h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : null }, text),
    ),
    h("span", { class: "who" }, t("nav.who", { name: user.display_name, device: device.label })),
    languageSwitch(),
    logout,
  );
}

// Establishes who is logged in and whether this browser holds an active device for them.
async function ensureSession() {
  if (!api.loggedIn()) return "login";
  session.user ??= await api.me();
  if (!session.device) {
    const stored = await loadDevice(session.user.id);
    const active = stored && (await api.devices()).some((d) => d.id === stored.deviceId && !d.revoked_at);
    session.device = active ? stored : null;
  }
  if (!session.device) return "device";
  api.setDevice(session.device.deviceId);
  monitorDirectory(session.user.id);
  return "ready";
}

// Monitoring one's own account (docs/e2ee.md section 18.4): on login and every few minutes, the directory
// log is read for devices registered to this user that this browser did not register nor the user approve.
const banner = main.parentElement.insertBefore(
  h("div", { id: "directory-banner", class: "banner", role: "alert", hidden: true }),
  main,
);
let monitoring = null;

async function checkOwnDevices(userId) {
  const unknown = await unknownDevices(userId).catch((error) => [{ error }]);
  if (unknown.length === 0) {
    banner.hidden = true;
    return;
  }
  banner.replaceChildren(
    h("strong", {}, t("directory.check_devices")),
    ...unknown.map((device) =>
      device.error
        ? h("p", {}, t("directory.unchecked", { message: describe(device.error) }))
        : h("p", {},
          t(device.revoked ? "directory.unknown_device_revoked" : "directory.unknown_device",
            { device: shortId(device.id), at: when(device.at) }),
          h("button", { class: "link", type: "button", onclick: () => approveDevice(userId, device.id).then(() =>
            checkOwnDevices(userId)) }, t("directory.mine"))),
    ),
  );
  banner.hidden = false;
}

function monitorDirectory(userId) {
  if (monitoring?.userId === userId) return;
  clearInterval(monitoring?.timer);
  monitoring = { userId, timer: setInterval(() => checkOwnDevices(userId), MONITOR_MINUTES * 60_000) };
  checkOwnDevices(userId);
}

function stopMonitoring() {
  clearInterval(monitoring?.timer);
  monitoring = null;
  banner.hidden = true;
}

const PUBLIC_ROUTES = [
  [/^#\/register$/, () => registerView()],
  [/^#\/pending$/, () => pendingView()],
];

const ROUTES = [
  [/^#\/cases$/, () => casesView(session)],
  [/^#\/queue$/, () => queueView(session)],
  [/^#\/new$/, () => newCaseView(session)],
  [/^#\/security$/, () => securityView(session)],
  [/^#\/case\/([0-9a-f-]{36})$/, (id) => caseView(session, id)],
  [/^#\/circles$/, () => circlesView()],
  [/^#\/circles\/new$/, () => newCircleView()],
  [/^#\/circle\/([0-9a-f-]{36})$/, (id) => circleView(session, id)],
  [/^#\/circle\/([0-9a-f-]{36})\/members$/, (id) => circleMembersView(session, id)],
  [/^#\/circle\/([0-9a-f-]{36})\/post\/([0-9a-f-]{36})$/, (id, post) => circleThreadView(session, id, post)],
  [/^#\/safety\/([0-9a-f-]{36})$/, (id) => safetyView(session, id)],
];

const matching = (routes) => routes.find(([pattern]) => pattern.test(location.hash));
const run = (route) => route[1](...location.hash.match(route[0]).slice(1));

function afterLogin() {
  const next = returnTo ?? home();
  returnTo = null;
  go(next);
}

async function view() {
  const open = matching(PUBLIC_ROUTES);
  if (open && !api.loggedIn()) return run(open);
  const state = await ensureSession();
  if (state === "login") return loginView(afterLogin, returnTo !== null);
  if (state === "device") {
    return deviceView(session, (device) => {
      session.device = device;
      afterLogin();
    });
  }
  const route = matching(ROUTES);
  if (!route) {
    go(home());
    return null;
  }
  return run(route);
}

async function render() {
  clearError();
  main.classList.add("loading");
  main.setAttribute("aria-busy", "true");
  try {
    const shown = await view();
    if (!shown) return;
    renderNav();
    main.replaceChildren(shown);
    document.title = `${t("app.name")} · ${main.querySelector("h1")?.textContent ?? ""}`;
  } catch (error) {
    if (SESSION_ENDED.includes(error.code)) return sessionOver();
    renderNav();
    showError(error);
  } finally {
    main.classList.remove("loading");
    main.removeAttribute("aria-busy");
  }
}

window.addEventListener("hashchange", render);
render();
