// The Confrere HTTP API over fetch, one function per operation (mirrors app/client/api.py); no crypto.
// Failures become ApiError with the problem+json `code`.

import { fromUtf8, unb64 } from "./bytes.js";
import { ApiError } from "./errors.js";

const CLIENT_NAME = "confrere-web/1";
// Tokens live in sessionStorage: they survive a reload of this tab and end with it, and are never
// shared with other tabs or written to disk as long-lived state.
const TOKENS = "confrere.tokens";

let deviceId = null;

export function setDevice(id) {
  deviceId = id;
}

function tokens() {
  return JSON.parse(sessionStorage.getItem(TOKENS) || "null");
}

function storeTokens(value) {
  if (value) sessionStorage.setItem(TOKENS, JSON.stringify(value));
  else sessionStorage.removeItem(TOKENS);
}

export const loggedIn = () => tokens() !== null;

async function problem(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.code || "http_error", body.detail);
  } catch {
    return new ApiError(response.status, "http_error", response.statusText);
  }
}

async function send(method, path, body) {
  const headers = { "X-Confrere-Client": CLIENT_NAME };
  const current = tokens();
  if (current) headers.Authorization = `Bearer ${current.access_token}`;
  if (deviceId) headers["X-Confrere-Device"] = deviceId;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  try {
    return await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "network_error", "the server cannot be reached");
  }
}

async function refresh() {
  const current = tokens();
  const response = await send("POST", "/v1/auth/refresh", { refresh_token: current.refresh_token });
  if (!response.ok) {
    storeTokens(null);
    throw await problem(response);
  }
  storeTokens(await response.json());
}

// Refresh tokens are single use and the server ends a session whose refresh token is presented twice, so
// requests that fail together (a case opens its objects in parallel) share one refresh.
let refreshing = null;

function refreshOnce() {
  refreshing ??= refresh().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function call(method, path, body) {
  const usedToken = tokens()?.access_token;
  let response = await send(method, path, body);
  // Access tokens are short-lived: renew with the refresh token (unless a parallel request just did),
  // then retry.
  if (response.status === 401 && tokens() && !path.startsWith("/v1/auth/")) {
    if (tokens().access_token === usedToken) await refreshOnce();
    response = await send(method, path, body);
  }
  if (!response.ok) throw await problem(response);
  return response;
}

export async function json(method, path, body) {
  const response = await call(method, path, body);
  return response.status === 204 ? null : response.json();
}

async function* pages(path, params = {}) {
  let cursor = null;
  do {
    const query = new URLSearchParams(
      Object.entries({ ...params, cursor }).filter(([, value]) => value !== null && value !== undefined),
    );
    const page = await json("GET", `${path}?${query}`);
    yield* page.items;
    cursor = page.next_cursor;
  } while (cursor);
}

export async function all(iterator) {
  const items = [];
  for await (const item of iterator) items.push(item);
  return items;
}

// -- auth ----------------------------------------------------------------------------------------------

export async function login(email, password, totpCode) {
  const body = { email, password, ...(totpCode ? { totp_code: totpCode } : {}) };
  storeTokens(await json("POST", "/v1/auth/token", body));
}

export async function logout() {
  try {
    await json("POST", "/v1/auth/logout");
  } finally {
    storeTokens(null);
    deviceId = null;
  }
}

export const me = () => json("GET", "/v1/me");
export const register = (body) => json("POST", "/v1/auth/register", body);
export const startTotp = () => json("POST", "/v1/auth/mfa/totp");
export const confirmTotp = (code) => json("POST", "/v1/auth/mfa/totp/confirm", { code });
export const keyBackup = async () => (await json("GET", "/v1/me/key-backup")).blob;
export const putKeyBackup = (blob) => json("PUT", "/v1/me/key-backup", { blob });

// -- devices and directory -------------------------------------------------------------------------------

export const deviceChallenge = (body) => json("POST", "/v1/devices/challenge", body);
export const registerDevice = (body) => json("POST", "/v1/devices", body);
export const devices = () => json("GET", "/v1/devices");
export const specialties = () => json("GET", "/v1/specialties");
export const professions = () => json("GET", "/v1/professions");
// Answers that name devices: `{checkpoint, devices}`, each device with its directory proof.
export const specialtyRecipients = (code) =>
  json("GET", `/v1/specialties/${encodeURIComponent(code)}/recipients`);
export const userDevices = (userId) => json("GET", `/v1/users/${userId}/devices`);
export const clinicianNames = async (ids) =>
  (await json("GET", `/v1/clinicians?${new URLSearchParams(ids.map((id) => ["id", id]))}`)).clinicians;

/** The caller's devices and the directory checkpoint (a header) their proofs lead to. */
export async function provedDevices() {
  const response = await call("GET", "/v1/devices");
  // The note is UTF-8 (its signature lines start with an em dash): base64 to bytes, then UTF-8.
  const checkpoint = fromUtf8(unb64(response.headers.get("X-Confrere-Directory-Checkpoint")));
  return { checkpoint, devices: await response.json() };
}

// -- the device directory log (public) -------------------------------------------------------------------

export const directoryKey = async () =>
  (await call("GET", "/v1/directory/checkpoint")).headers.get("X-Confrere-Log-Key");
export const directoryCheckpoint = async () => (await call("GET", "/v1/directory/checkpoint")).text();
export const directoryConsistency = (first, second) =>
  json("GET", `/v1/directory/proof/consistency?first=${first}&second=${second}`);

export async function directoryEntries(bundle, width) {
  const index = String(bundle % 1000).padStart(3, "0");
  const prefix = [];
  for (let rest = Math.floor(bundle / 1000); rest > 0; rest = Math.floor(rest / 1000)) {
    prefix.unshift(`x${String(rest % 1000).padStart(3, "0")}`);
  }
  const path = [...prefix, index].join("/") + (width < 256 ? `.p/${width}` : "");
  return new Uint8Array(await (await call("GET", `/v1/directory/log/tile/entries/${path}`)).arrayBuffer());
}

// -- cases -------------------------------------------------------------------------------------------------

export const createCase = (body) => json("POST", "/v1/cases", body);
export const getCase = (caseId) => json("GET", `/v1/cases/${caseId}`);
export const cases = (params) => pages("/v1/cases", params);
export const queue = (params) => pages("/v1/cases/queue", params);
// One page of a list with each case's sealed object: what the list's summaries are decrypted from.
export const listPage = (which, cursor) =>
  json("GET", `/v1/cases${which === "queue" ? "/queue" : ""}?${new URLSearchParams({
    sealed: "true", ...(cursor ? { cursor } : {}) })}`);
export const transition = (caseId, action, extra = {}) =>
  json("POST", `/v1/cases/${caseId}/transitions`, { action, ...extra });
export const messages = (caseId) => pages(`/v1/cases/${caseId}/messages`);
export const postMessage = (caseId, body) => json("POST", `/v1/cases/${caseId}/messages`, body);
// Re-share (idempotent): `{ envelope_count, already_held }`.
export const shareCase = (caseId, body) => json("POST", `/v1/cases/${caseId}/envelopes`, body);

// The server streams `meta` before `ciphertext`, so the parts must be appended in this order.
export function uploadAttachment(caseId, meta, ciphertext) {
  const form = new FormData();
  form.append("meta", JSON.stringify(meta));
  form.append("ciphertext", new Blob([ciphertext], { type: "application/octet-stream" }), "ciphertext.bin");
  return json("POST", `/v1/cases/${caseId}/attachments`, form);
}

export async function downloadAttachment(caseId, attachmentId) {
  const response = await call("GET", `/v1/cases/${caseId}/attachments/${attachmentId}`);
  return new Uint8Array(await response.arrayBuffer());
}
