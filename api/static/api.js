// rx-api over fetch, in salt-api's routes and shapes: POST /login, POST / (lowstate), GET /minions, GET /jobs.
// The token lives in sessionStorage (gone when the tab closes) and travels in the X-Auth-Token header, never
// in a URL or a cookie, so no other site can make the browser use it.

const SESSION_KEY = "rx.session";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The message of an error body in salt-api's shapes ({"return": "..."}, {"status", "message"}) or plain text. */
function errorText(status, body) {
  if (body && typeof body === "object") {
    for (const key of ["return", "message", "error"]) {
      const v = body[key];
      if (typeof v === "string" && v) return v;
      if (Array.isArray(v) && typeof v[0] === "string") return v[0];
      if (v && typeof v === "object" && typeof v.message === "string") return v.message;
    }
  }
  if (typeof body === "string" && body.trim() && body.length < 500) return body.trim();
  return { 400: "bad request", 401: "not logged in, or the session expired", 403: "not permitted",
           404: "not found", 429: "too many attempts: wait and try again" }[status] || `HTTP ${status}`;
}

export class Api {
  constructor(onUnauthorized) {
    this.onUnauthorized = onUnauthorized;
    this.session = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (saved && saved.token && (!saved.expire || saved.expire * 1000 > Date.now())) this.session = saved;
    } catch {
      this.session = null;
    }
  }

  get token() {
    return this.session ? this.session.token : null;
  }

  async request(method, path, body, { auth = true, signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.token) headers["X-Auth-Token"] = this.token;
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                 credentials: "omit", cache: "no-store", signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, `rx-api cannot be reached (${err.message})`);
    }
    const text = await resp.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!resp.ok) {
      if (resp.status === 401 && auth) this.forget();
      const error = new ApiError(resp.status, errorText(resp.status, data));
      if (resp.status === 401 && auth && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  async login(username, password, eauth) {
    const data = await this.request("POST", "login", { username, password, eauth }, { auth: false });
    const entry = data && Array.isArray(data.return) ? data.return[0] : null;
    if (!entry || typeof entry.token !== "string") throw new ApiError(500, "rx-api's /login answer has no token");
    this.session = { token: entry.token, user: String(entry.user || username), eauth: String(entry.eauth || eauth),
                     expire: Number(entry.expire) || 0, perms: entry.perms || [] };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    return this.session;
  }

  forget() {
    this.session = null;
    sessionStorage.removeItem(SESSION_KEY);
  }

  async logout() {
    try {
      if (this.token) await this.request("POST", "logout", {});
    } finally {
      this.forget();
    }
  }

  /** POST / with lowstate chunks; returns salt-api's `return` list (one entry per chunk). */
  async lowstate(chunks, options) {
    const data = await this.request("POST", "./", chunks, options);
    if (!data || !Array.isArray(data.return)) throw new ApiError(500, "rx-api's answer has no return list");
    return data.return;
  }

  /** One runner function: its return. */
  async runner(fun, kwargs = {}, options) {
    return (await this.lowstate([{ client: "runner", fun, ...kwargs }], options))[0];
  }

  /** One wheel function: its return (salt-api wraps it as {tag, data: {return, success}}). */
  async wheel(fun, kwargs = {}, options) {
    const out = (await this.lowstate([{ client: "wheel", fun, ...kwargs }], options))[0];
    if (out && typeof out === "object" && out.data && typeof out.data === "object" && "return" in out.data) {
      if (out.data.success === false) throw new ApiError(500, errorText(500, { return: out.data.return }));
      return out.data.return;
    }
    return out;
  }

  /** Publish a job without waiting (local_async): {jid, minions}. */
  async publish(tgt, fun, arg, kwarg, tgtType) {
    const chunk = { client: "local_async", tgt, fun, arg, tgt_type: tgtType };
    if (kwarg && Object.keys(kwarg).length) chunk.kwarg = kwarg;
    const out = (await this.lowstate([chunk]))[0];
    if (!out || typeof out !== "object" || !out.jid) {
      throw new ApiError(400, out && typeof out === "object" && !Object.keys(out).length
        ? "no minion matched the target" : errorText(400, out));
    }
    return { jid: String(out.jid), minions: Array.isArray(out.minions) ? out.minions.map(String) : [] };
  }

  async get(path, options) {
    return this.request("GET", path, undefined, options);
  }
}
