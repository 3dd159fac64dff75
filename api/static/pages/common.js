// Pieces several pages share: the target-type choices, key-state names, the minion list's data sources.

import { h } from "../dom.js";

/** The target types rx-api's local and runner clients accept (Salt's tgt_type names). */
export const TARGET_TYPES = [
  ["glob", "glob (web*)"], ["list", "list (a,b,c)"], ["pcre", "regular expression"], ["grain", "grain (os:Debian)"],
  ["grain_pcre", "grain, regex"], ["pillar", "pillar"], ["ipcidr", "IP/CIDR"], ["compound", "compound (G@os:Debian and web*)"],
  ["nodegroup", "nodegroup"],
];

/** wheel key.list_all's lists and how the dashboard names them. */
export const KEY_LISTS = [["minions", "accepted"], ["minions_pre", "pending"], ["minions_rejected", "rejected"],
                          ["minions_denied", "denied"]];

/** The target type choice; `pillar: false` leaves pillar out (the master's grains cache cannot match it). */
export function targetTypeSelect(value = "glob", { pillar = true } = {}) {
  const types = TARGET_TYPES.filter(([v]) => pillar || v !== "pillar");
  return h("select", { name: "tgt_type" }, types.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

/** {id: key state} from wheel key.list_all. */
export async function keyStates(api) {
  const listing = (await api.wheel("key.list_all")) || {};
  const states = {};
  for (const [list, state] of KEY_LISTS) {
    for (const id of Array.isArray(listing[list]) ? listing[list] : []) states[String(id)] = state;
  }
  return states;
}

/** {id: connection address} of the minions connected now (runner manage.present: presence, no ping). */
export async function presentMinions(api) {
  const out = await api.runner("manage.present", { show_ip: true });
  if (Array.isArray(out)) return Object.fromEntries(out.map((id) => [String(id), ""]));
  return out && typeof out === "object" ? out : {};
}

/** {id: {up, since, last_seen}} of the accepted minions: when each was last connected (runner manage.last_seen:
 * the publisher's presence, kept across master restarts; nothing is sent to the minions). */
export async function lastSeen(api) {
  const out = await api.runner("manage.last_seen", {});
  return out && typeof out === "object" && !Array.isArray(out) ? out : {};
}

/** {id: grains} of the minions a target expression matches, by the master's matcher over its grains cache
 * (runner cache.grains); `tgt` "*" for all. */
export async function cachedGrains(api, tgt = "*", tgtType = "glob") {
  const out = await api.runner("cache.grains", { tgt, tgt_type: tgtType });
  return out && typeof out === "object" && !Array.isArray(out) ? out : {};
}

/** A coloured label with a word in it (colour is never the only sign: the word says it). */
export function badge(word, kind) {
  return h("span", { class: ["badge", kind || word] }, word);
}

/** An error shown where the data would have been. */
export function failure(err, what) {
  return h("p", { class: "error", role: "alert" }, `${what}: ${err.message}`);
}

/** Minion ids sorted as people read them (m2 before m10). */
export function byId(a, b) {
  return a.localeCompare(b, undefined, { numeric: true });
}
