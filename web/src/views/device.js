// Register this browser as a device (keys generated here; only their public halves are sent), with an
// optional key backup under a passphrase; or restore a backed-up device's keys into this browser.

import * as api from "../api.js";
import { backupableKeys, keysFromSecrets, matchesRegistered, openBackup, sealBackup } from "../backup.js";
import { b64, unb64 } from "../bytes.js";
import { enrolDevice } from "../clinician.js";
import { busy, field, h } from "../dom.js";
import { E2EEError } from "../errors.js";
import { t } from "../i18n.js";
import { saveDevice } from "../keystore.js";
import { showError } from "../shell.js";

const MIN_PASSPHRASE = 12;

async function storedBackup() {
  try {
    return unb64(await api.keyBackup());
  } catch (error) {
    if (error.code === "key_backup_not_found") return null;
    throw error;
  }
}

// The backup holds every backed-up device of the account: a new one is added to what the passphrase
// opens, so the existing backup is opened first (a wrong passphrase stops before anything is registered).
async function registerWithBackup(user, suite, label, passphrase) {
  const existing = await storedBackup();
  const devices = existing ? await openBackup(passphrase, user.id, existing) : {};
  const { keys, secrets } = await backupableKeys(suite);
  const device = await enrolDevice(user, suite, label, keys);
  devices[device.deviceId] = secrets;
  await api.putKeyBackup(b64(await sealBackup(passphrase, user.id, devices)));
  return device;
}

async function restore(user, passphrase) {
  const blob = await storedBackup();
  if (!blob) throw new E2EEError("key_backup_not_found");
  const backedUp = await openBackup(passphrase, user.id, blob);
  const active = (await api.devices()).filter((d) => !d.revoked_at && backedUp[d.id]);
  if (active.length === 0) throw new E2EEError("no_backed_up_device");
  const device = active[active.length - 1];
  const secrets = backedUp[device.id];
  const keys = await keysFromSecrets(secrets.suite, secrets.signingPrivate, secrets.kemPrivate);
  if (!matchesRegistered(keys, device)) throw new E2EEError("backup_key_mismatch");
  await saveDevice(user.id, device.id, device.label, keys);
  return { userId: user.id, deviceId: device.id, label: device.label, keys };
}

function registerForm(session, onRegistered) {
  const label = h("input", { name: "label", required: true, maxlength: "100",
    value: t("device.default_name", { platform: navigator.platform || "?" }) });
  const passphrase = h("input", { type: "password", name: "passphrase", autocomplete: "new-password" });
  const again = h("input", { type: "password", name: "passphrase_again", autocomplete: "new-password" });
  const suite = (value, checked) =>
    h("label", { class: "choice" },
      h("input", { type: "radio", name: "suite", value, checked }),
      h("span", {}, h("strong", {}, t(`device.${value}`)), h("br"), t(`device.${value}_text`)));
  const form = h("form", { class: "card", "aria-labelledby": "device-title" },
    h("h1", { id: "device-title" }, t("device.title")),
    h("p", {}, t("device.text", { name: session.user.display_name })),
    field(t("device.name"), label),
    h("fieldset", {}, h("legend", {}, t("device.suite")), suite("xwing", true), suite("x25519", false)),
    h("p", { class: "hint" }, t("device.suite_hint")),
    field(t("device.passphrase"), passphrase, t("device.passphrase_hint")),
    field(t("device.passphrase_again"), again),
    h("button", { type: "submit" }, t("device.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = form.querySelector("input[name=suite]:checked").value;
    const secret = passphrase.value;
    if (secret && secret.length < MIN_PASSPHRASE) return showError({ code: "passphrase_short" });
    if (secret !== again.value) return showError({ code: "passphrase_mismatch" });
    const name = label.value.trim();
    return busy(form, () => (secret
      ? registerWithBackup(session.user, chosen, name, secret)
      : enrolDevice(session.user, chosen, name)))
      .then(onRegistered)
      .catch(showError);
  });
  return form;
}

function restoreForm(session, onRestored) {
  const passphrase = h("input", { type: "password", name: "restore_passphrase", required: true,
    autocomplete: "current-password" });
  const form = h("form", { class: "card", "aria-labelledby": "restore-title" },
    h("h2", { id: "restore-title" }, t("device.restore_title")),
    h("p", {}, t("device.restore_text")),
    field(t("device.restore_passphrase"), passphrase),
    h("button", { type: "submit" }, t("device.restore")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => restore(session.user, passphrase.value)).then(onRestored).catch(showError);
  });
  return form;
}

export function deviceView(session, onReady) {
  return h("section", { class: "device" }, registerForm(session, onReady), restoreForm(session, onReady));
}
