// The JSON API seen from the pages: same-origin fetches that carry the session cookie, the CSRF
// header on mutating requests, RFC 9457 problems turned into ApiError, and a 401 sending the
// browser to the sign-in page. Cookie and header names follow docs/security.md. Every answer's
// strings arrive with control and bidi characters made visible (text.js).

import { visibleData } from "./text.js";

export const AUTH = {
  csrfCookie: "ocec_csrf",
  csrfHeader: "X-CSRF-Token",
  signinPage: "/ui/signin",
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** Field errors of a 422: [{field, message}] */
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

function cookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split("; ").find((part) => part.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : null;
}

export function signinUrl() {
  const here = location.pathname + location.search;
  return `${AUTH.signinPage}?next=${encodeURIComponent(here)}`;
}

async function problemOf(response) {
  try {
    const body = visibleData(await response.json());
    if (body && typeof body === "object") return body;
  } catch (_) {
    // not JSON: fall through
  }
  return { title: response.statusText || `HTTP ${response.status}`, status: response.status };
}

/** fetch a JSON endpoint; throws ApiError with the problem body on any non-2xx answer. */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers }, signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (method !== "GET") {
    const token = cookie(AUTH.csrfCookie);
    if (token) init.headers[AUTH.csrfHeader] = token;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && location.pathname !== AUTH.signinPage) {
    location.assign(signinUrl());
    throw new ApiError(401, await problemOf(response));
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (response.status === 204) return null;
  return visibleData(await response.json());
}

export const post = (path, body, headers) => api(path, { method: "POST", body, headers });

/** POST a file as the raw body (``?filename=`` names it), reporting progress as a 0..1 fraction. */
export function upload(path, file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${path}?filename=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    const token = cookie(AUTH.csrfCookie);
    if (token) xhr.setRequestHeader(AUTH.csrfHeader, token);
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onerror = () => reject(new Error("the upload was cut off"));
    xhr.onload = () => {
      let body = null;
      try {
        body = visibleData(JSON.parse(xhr.responseText));
      } catch (_) {
        body = { title: xhr.statusText || `HTTP ${xhr.status}`, status: xhr.status };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.send(file);
  });
}

/** Every page of a paged list: metrics (after_epoch / next_after_epoch), events (after / next_after). */
export async function all(path, cursorParam, cursorField, start = 0) {
  const rows = [];
  let cursor = start;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}${cursorParam}=${cursor}`);
    rows.push(...page.data);
    if (page[cursorField] === null || page[cursorField] === undefined) return rows;
    cursor = page[cursorField];
  }
}

export const jobUrl = (id) => `/jobs/${encodeURIComponent(id)}`;
export const pageUrl = (id) => `/ui/jobs/${encodeURIComponent(id)}`;

/** A key for Idempotency-Key headers: one per user intention, so a double submit has one effect. */
export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** Show an error: the problem's detail, or its field errors. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  const fields = error.fieldErrors.map((e) => `${e.field}: ${e.message}`).join("; ");
  const title = error.problem.title || `HTTP ${error.status}`;
  return `${error.status} ${title}: ${fields || error.problem.detail || ""}`.trim();
}
