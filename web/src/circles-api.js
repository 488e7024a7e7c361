// The peer-circle routes of the API (docs/api.md, circles), one function per operation; no crypto.

import { json } from "./api.js";

const base = (circleId) => `/v1/circles/${circleId}`;
const query = (params) => new URLSearchParams(
  Object.entries(params).filter(([, value]) => value !== null && value !== undefined));

export const professions = () => json("GET", "/v1/professions");
export const circlesPage = (params = {}) => json("GET", `/v1/circles?${query(params)}`);
export const createCircle = (body) => json("POST", "/v1/circles", body);
export const circle = (circleId) => json("GET", base(circleId));
export const members = async (circleId) => (await json("GET", `${base(circleId)}/members`)).members;
export const recipients = (circleId) => json("GET", `${base(circleId)}/recipients`);
export const join = (circleId) => json("POST", `${base(circleId)}/join`);
export const leave = (circleId) => json("POST", `${base(circleId)}/leave`);
export const invite = (circleId, userId) => json("POST", `${base(circleId)}/invitations`, { user_id: userId });
export const removeMember = (circleId, userId) => json("DELETE", `${base(circleId)}/members/${userId}`);
export const setRole = (circleId, userId, role) =>
  json("PUT", `${base(circleId)}/members/${userId}/role`, { role });
export const postEpoch = (circleId, body) => json("POST", `${base(circleId)}/epochs`, body);
export const epochs = (circleId) => json("GET", `${base(circleId)}/epochs`);
export const createPseudonym = (circleId, body) => json("POST", `${base(circleId)}/pseudonym`, body);
export const pseudonyms = async (circleId) => (await json("GET", `${base(circleId)}/pseudonyms`)).pseudonyms;
export const createPost = (circleId, body) => json("POST", `${base(circleId)}/posts`, body);
export const postsPage = (circleId, cursor) => json("GET", `${base(circleId)}/posts?${query({ cursor })}`);
export const post = (circleId, postId) => json("GET", `${base(circleId)}/posts/${postId}`);
export const react = (circleId, postId, kind, on) =>
  json(on ? "PUT" : "DELETE", `${base(circleId)}/posts/${postId}/reactions/${kind}`);
export const hide = (circleId, postId, reason) => json("POST", `${base(circleId)}/posts/${postId}/hide`, { reason });
export const report = (circleId, postId, reason, note) =>
  json("POST", `${base(circleId)}/posts/${postId}/reports`, { reason, ...(note ? { note } : {}) });
export const reports = async (circleId) => (await json("GET", `${base(circleId)}/reports`)).reports;
export const openSession = (circleId, body) => json("POST", `${base(circleId)}/sessions`, body);
export const session = (circleId, sessionId) => json("GET", `${base(circleId)}/sessions/${sessionId}`);
export const nextRound = (circleId, sessionId, round) =>
  json("POST", `${base(circleId)}/sessions/${sessionId}/rounds`, { round });
