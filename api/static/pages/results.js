// One job's per-minion results, shared by the command box (returns stream in) and the job page (read from the
// job store): a row per minion, coloured by outcome and always saying it in words (ok, failed with its
// retcode, waiting, did not return with the reason).

import { h, jidTime, replace, show } from "../dom.js";
import { byId } from "./common.js";

/** A minion's outcome from its return: {kind: "ok"|"failed", label}. */
export function outcome(retcode, success) {
  if (retcode === 0 && success !== false) return { kind: "ok", label: "ok" };
  return { kind: "failed", label: typeof retcode === "number" ? `failed, retcode ${retcode}` : "failed" };
}

export class JobResults {
  /** `live`: the list is an aria-live region (returns arriving are read out). */
  constructor({ live = false } = {}) {
    this.rows = new Map();
    this.counts = h("p", { class: "counts" });
    this.list = h("ul", { class: "results", "aria-label": "Results by minion" });
    if (live) {
      this.list.setAttribute("aria-live", "polite");
      this.list.setAttribute("aria-relevant", "additions text");
    }
    this.el = h("div", { class: "job-results" }, this.counts, this.list);
  }

  row(id) {
    let row = this.rows.get(id);
    if (!row) {
      const status = h("span", { class: "badge waiting" }, "waiting");
      const body = h("pre", { class: "output" });
      const timing = h("span", { class: "timing" });
      const li = h("li", { class: "result waiting", dataset: { minion: id } },
        h("div", { class: "result-head" }, h("strong", { class: "minion" }, id), status, timing), body);
      row = { li, status, body, timing, state: "waiting" };
      this.rows.set(id, row);
      const after = [...this.rows.keys()].filter((other) => other !== id && byId(other, id) > 0).sort(byId)[0];
      this.list.insertBefore(li, after ? this.rows.get(after).li : null);
    }
    return row;
  }

  set(id, state, label, text, timing = "") {
    const row = this.row(id);
    row.state = state;
    row.li.className = `result ${state}`;
    row.status.className = `badge ${state}`;
    row.status.textContent = label;
    row.body.textContent = text;
    row.timing.textContent = timing;
    this.update();
  }

  /** The minions the job expects (shown as waiting until they return). */
  expect(ids) {
    for (const id of ids) this.row(id);
    this.update();
  }

  /** A minion's return. */
  returned(id, ret, retcode, success, timing) {
    const { kind, label } = outcome(retcode, success);
    this.set(id, kind, label, show(ret), timing);
  }

  /** A minion that did not return, and why. */
  missing(id, reason) {
    this.set(id, "missing", "did not return", reason);
  }

  waiting() {
    return [...this.rows.entries()].filter(([, r]) => r.state === "waiting").map(([id]) => id);
  }

  has(id) {
    const row = this.rows.get(id);
    return Boolean(row && row.state !== "waiting");
  }

  update() {
    const n = { ok: 0, failed: 0, missing: 0, waiting: 0 };
    for (const row of this.rows.values()) n[row.state] += 1;
    const total = this.rows.size;
    const parts = [`${n.ok + n.failed} of ${total} returned`, `${n.ok} ok`, `${n.failed} failed`];
    if (n.missing) parts.push(`${n.missing} did not return`);
    if (n.waiting) parts.push(`${n.waiting} waiting`);
    replace(this.counts, parts.join(", "));
  }
}

/** "ran 0.012 s, answered 0.35 s after publish" from a return's start_time/end_time (epoch seconds). */
export function timing(jid, r) {
  if (!r || typeof r.start_time !== "number" || typeof r.end_time !== "number") return "";
  const parts = [`ran ${(r.end_time - r.start_time).toFixed(3)} s`];
  const published = jidTime(jid);
  if (published) parts.push(`done ${Math.max(0, r.end_time - published.getTime() / 1000).toFixed(2)} s after publish`);
  return parts.join(", ");
}

/** The reason a minion did not return, from what the job lookup and presence say. */
export function missingReason(lookupText, present, waited) {
  const said = typeof lookupText === "string" && lookupText ? lookupText : "Minion did not return";
  if (present === false) return `${said}: it is not connected to the master.`;
  if (present === true) {
    return `${said}${waited ? ` within ${waited} s` : ""}: it is connected, so the function may still be running or hung (see Jobs).`;
  }
  return `${said}.`;
}
