// The app shell: session state, the hash router, navigation and the error notice.

import * as api from "./api.js";
import { approveDevice, unknownDevices } from "./directory.js";
import { h, shortId } from "./dom.js";
import { loadDevice } from "./keystore.js";
import { clearError, go, showError } from "./shell.js";
import { caseView } from "./views/case.js";
import { casesView, queueView } from "./views/cases.js";
import { deviceView } from "./views/device.js";
import { loginView } from "./views/login.js";
import { newCaseView } from "./views/new-case.js";

const main = document.getElementById("main");
const MONITOR_MINUTES = 5;
const nav = document.getElementById("nav");

// Codes after which only a new login helps (the refresh in api.js has already been tried).
const SESSION_ENDED = ["unauthenticated", "invalid_token", "invalid_refresh_token", "refresh_token_reused"];

// Filled once per login: the account (GET /v1/me) and this browser's device for it.
const session = { user: null, device: null };

async function signOut() {
  await api.logout().catch(() => {});
  session.user = session.device = null;
  clearInterval(monitoring?.timer);
  monitoring = null;
  banner.hidden = true;
  go("#/login");
}

function renderNav() {
  const { user, device } = session;
  if (!user || !device) {
    nav.replaceChildren(user ? h("button", { class: "link", onclick: signOut }, "Log out") : "");
    return;
  }
  const links = [
    ["#/cases", "My cases"],
    ...(user.roles.includes("specialist") ? [["#/queue", "Queue"]] : []),
    ["#/new", "New case"],
  ];
  nav.replaceChildren(
    ...links.map(([href, text]) =>
      h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : null }, text),
    ),
    h("span", { class: "who" },
      `${user.display_name} · ${device.keys.suite} device ${shortId(device.deviceId)}`),
    h("button", { class: "link", onclick: signOut }, "Log out"),
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
    h("strong", {}, "Check your devices. "),
    ...unknown.map((device) =>
      device.error
        ? h("p", {}, `The device directory could not be checked: ${device.error.message}`)
        : h("p", {},
          `A device (${shortId(device.id)}) was registered to your account on ${device.at}` +
            `${device.revoked ? " and revoked since" : ""}, not from this browser. If it is not yours, revoke ` +
            "it and tell your administrator. ",
          h("button", { class: "link", onclick: () => approveDevice(userId, device.id).then(() =>
            checkOwnDevices(userId)) }, "It is mine")),
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

const ROUTES = [
  [/^#\/cases$/, () => casesView(session)],
  [/^#\/queue$/, () => queueView(session)],
  [/^#\/new$/, () => newCaseView(session)],
  [/^#\/case\/([0-9a-f-]{36})$/, (id) => caseView(session, id)],
];

async function render() {
  clearError();
  main.classList.add("loading");
  try {
    const state = await ensureSession();
    let view;
    if (state === "login") {
      view = loginView(() => go("#/cases"));
    } else if (state === "device") {
      view = deviceView(session, (device) => {
        session.device = device;
        go("#/cases");
      });
    } else {
      const route = ROUTES.find(([pattern]) => pattern.test(location.hash));
      if (!route) return go("#/cases");
      view = await route[1](...location.hash.match(route[0]).slice(1));
    }
    renderNav();
    main.replaceChildren(view);
    document.title = `Confrere · ${main.querySelector("h1")?.textContent ?? ""}`;
  } catch (error) {
    if (SESSION_ENDED.includes(error.code)) {
      session.user = session.device = null;
      return go("#/login");
    }
    showError(error);
  } finally {
    main.classList.remove("loading");
  }
}

window.addEventListener("hashchange", render);
render();
