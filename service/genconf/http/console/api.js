// The JSON API client: the bearer token from session storage, errors as ApiError
// with the server's {code, message, details}. Nothing here ever puts the token in a URL.

const TOKEN_KEY = "genconf.token";
export const BASE = "/api/v1";

/** An error the console shows as it came: the gRPC status name and the server's message. */
export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const session = {
  /** The token of this tab (sessionStorage: gone when the tab closes), or "" (auth off). */
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  /** whoami: {role, name, token_id, auth}. */
  who: null,
  get canWrite() {
    return this.who !== null && (this.who.role === "admin" || this.who.role === "controller");
  },
  get isAdmin() {
    return this.who !== null && this.who.role === "admin";
  },
};

const listeners = new Set();
/** Called with the ApiError whenever the server refuses our token (expired, revoked). */
export function onUnauthenticated(fn) {
  listeners.add(fn);
}

export function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  if (session.token) out.Authorization = `Bearer ${session.token}`;
  return out;
}

/** The error body of a failed response, whatever the server (or a proxy) sent. */
export async function errorOf(response) {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && typeof body.code === "string" && typeof body.message === "string") {
      return new ApiError(response.status, body.code, body.message, body.details ?? null);
    }
    if (body && body.detail !== undefined) {
      return new ApiError(response.status, `HTTP ${response.status}`, JSON.stringify(body.detail));
    }
  } catch {
    // not JSON: fall through
  }
  const snippet = text.trim().slice(0, 300);
  return new ApiError(
    response.status,
    `HTTP ${response.status}`,
    snippet || response.statusText || "the server answered with an error and no message",
  );
}

/** One call: ``api("GET", "/applications")``; resolves to the parsed JSON body. */
export async function api(method, path, body, { token } = {}) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (token !== undefined) {
    if (token) init.headers.Authorization = `Bearer ${token}`;
    else delete init.headers.Authorization;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (exc) {
    throw new ApiError(0, "UNAVAILABLE", `the server did not answer (${exc.message || exc}): is genconf still running?`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && token === undefined) listeners.forEach((fn) => fn(error));
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body = {}) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);
