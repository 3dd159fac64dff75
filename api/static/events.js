// The live event stream: GET /events read with fetch (so the token goes in the X-Auth-Token header, not in the
// URL as EventSource would need), parsed as server-sent events in salt-api's format: a `tag:` line, a `data:`
// line holding {"tag", "data"} as JSON, an `id:` line.  After a break it reconnects with Last-Event-ID, so rx-api
// replays what was missed within its window.  Tags may be rx's (rx/job/<jid>/ret/<id>) or Salt's
// (salt/job/<jid>/ret/<id>, with rx-api's salt_event_tags option): both are understood.

const KEEP = 500;          // events kept for the live page and for a job published before its jid was known
const MAX_LINE = 1 << 20;  // a longer line is a broken stream: reconnect
const RET_TAG = /^(?:rx|salt)\/job\/(\d{20})\/ret\/(.+)$/;
const NEW_TAG = /^(?:rx|salt)\/job\/(\d{20})\/new$/;

/** A job's return event as {jid, id, ret, retcode, success}, or null for any other tag. */
export function jobReturn(tag, data) {
  const m = RET_TAG.exec(tag);
  if (!m || !data || typeof data !== "object") return null;
  const ret = "return" in data ? data.return : data.ret;
  const retcode = typeof data.retcode === "number" ? data.retcode : (data.success === false ? 1 : 0);
  return { jid: m[1], id: typeof data.id === "string" ? data.id : m[2], ret, retcode,
           success: data.success !== false && retcode === 0, start_time: data.start_time, end_time: data.end_time };
}

/** A job's new event: {jid, minions}, or null. */
export function jobNew(tag, data) {
  const m = NEW_TAG.exec(tag);
  if (!m || !data || typeof data !== "object") return null;
  return { jid: m[1], minions: Array.isArray(data.minions) ? data.minions.map(String) : [] };
}

export class EventStream {
  constructor(api) {
    this.api = api;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.recent = [];
    this.lastId = null;
    this.state = "closed";
    this.abort = null;
    this.backoff = 500;
  }

  /** Call fn({tag, data, id, time}) for every event from now on; returns the unsubscribe function. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Call fn(state) on "connecting", "live", "retrying", "closed"; returns the unsubscribe function. */
  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.state);
    return () => this.stateListeners.delete(fn);
  }

  setState(state) {
    this.state = state;
    for (const fn of this.stateListeners) fn(state);
  }

  start() {
    if (this.abort) return;
    this.abort = new AbortController();
    this.loop(this.abort.signal);
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    this.recent = [];
    this.lastId = null;
    this.setState("closed");
  }

  async loop(signal) {
    while (!signal.aborted) {
      try {
        this.setState("connecting");
        await this.read(signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err && err.status === 401) {
          this.setState("closed");
          if (this.api.onUnauthorized) this.api.onUnauthorized(err);
          return;
        }
      }
      if (signal.aborted) return;
      this.setState("retrying");
      await new Promise((resolve) => setTimeout(resolve, this.backoff));
      this.backoff = Math.min(this.backoff * 2, 10000);
    }
  }

  async read(signal) {
    const headers = { Accept: "text/event-stream", "X-Auth-Token": this.api.token || "" };
    if (this.lastId) headers["Last-Event-ID"] = this.lastId;
    const resp = await fetch("events", { headers, signal, cache: "no-store", credentials: "omit" });
    if (!resp.ok || !resp.body) {
      const err = new Error(`GET /events: HTTP ${resp.status}`);
      err.status = resp.status;
      throw err;
    }
    this.setState("live");
    this.backoff = 500;
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let block = { data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? 2 : 1));
        if (line === "") {
          this.dispatch(block);
          block = { data: [], id: null };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "data") block.data.push(val);
          else if (name === "id" && !val.includes("\0")) block.id = val;
        }
      }
      if (buffer.length > MAX_LINE) throw new Error("an event line longer than the limit");
    }
  }

  dispatch(block) {
    if (block.id !== null) this.lastId = block.id;
    if (!block.data.length) return;
    let parsed;
    try {
      parsed = JSON.parse(block.data.join("\n"));
    } catch {
      return;
    }
    if (!parsed || typeof parsed !== "object" || typeof parsed.tag !== "string") return;
    const event = { tag: parsed.tag, data: parsed.data, id: block.id, time: Date.now() };
    this.recent.push(event);
    if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
    for (const fn of this.listeners) {
      try {
        fn(event);
      } catch (err) {
        console.error("event listener failed", err);
      }
    }
  }
}
