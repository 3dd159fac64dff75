// The minion list: up or down (presence, from manage.present: nothing is sent to the minions), key state
// (wheel key.list_all), os and ip (the master's grains cache, runner cache.grains), last seen (runner
// manage.last_seen: when the publisher last saw each connected, kept across master restarts).  The filter is a
// target expression matched by the master (cache.grains with tgt and tgt_type): the same matcher a job uses,
// without publishing anything.

import { clock, field, h, heading, replace } from "../dom.js";
import { badge, byId, cachedGrains, failure, keyStates, lastSeen, presentMinions, targetTypeSelect } from "./common.js";

const EVERY_MS = 10e3; // the list is read again this often while the page is open

function osName(g) {
  if (!g || typeof g !== "object") return "";
  if (typeof g.osfinger === "string" && g.osfinger) return g.osfinger;
  return [g.os, g.osrelease].filter((v) => typeof v === "string" && v).join(" ");
}

function address(g, connected) {
  if (connected) return String(connected).replace(/^tcp:\/\//, "");
  const ips = g && Array.isArray(g.ipv4) ? g.ipv4.filter((ip) => typeof ip === "string" && !ip.startsWith("127.")) : [];
  return ips[0] || "";
}

function row(id, key, present, grains, seen) {
  const up = present !== undefined;
  const last = seen && typeof seen.last_seen === "number" ? seen.last_seen : null;
  const when = up ? "now" : last !== null ? clock(last) : "never (by this master)";
  return h("tr", { dataset: { minion: id } },
    h("th", { scope: "row" }, id),
    h("td", {}, key === "accepted" ? badge(up ? "up" : "down") : badge("-", "none")),
    h("td", {}, badge(key || "no key", key || "none")),
    h("td", {}, osName(grains)),
    h("td", {}, address(grains, present)),
    h("td", {}, when));
}

export function mount(ctx, main) {
  const tgt = h("input", { name: "tgt", value: "*", autocomplete: "off", spellcheck: "false" });
  const type = targetTypeSelect("glob", { pillar: false });
  const apply = h("button", { type: "submit", class: "primary" }, "Filter");
  const form = h("form", { class: "inline", role: "search", "aria-label": "Filter minions" },
    field("Target", tgt, "matched by the master, as a job's target"), field("Target type", type), apply);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const table = h("div", { class: "table-wrap" });
  const refresh = h("button", { type: "button" }, "Refresh");
  main.append(h("div", { class: "page-head" }, heading("Minions"), refresh), form, summary, table);

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    summary.textContent = "Loading…";
    try {
      const filtered = !(tgt.value.trim() === "*" && type.value === "glob");
      const [keys, present, grains, seen] = await Promise.all([
        keyStates(ctx.api), presentMinions(ctx.api).catch(() => ({})),
        cachedGrains(ctx.api, tgt.value.trim() || "*", type.value), lastSeen(ctx.api).catch(() => ({}))]);
      const ids = filtered ? Object.keys(grains) : [...new Set([...Object.keys(keys), ...Object.keys(present)])];
      ids.sort(byId);
      const up = ids.filter((id) => present[id] !== undefined).length;
      summary.textContent = `${ids.length} minion(s), ${up} up${filtered ? ` matching ${tgt.value.trim()} (${type.value})` : ""}.`;
      replace(table, h("table", { class: "grid" },
        h("caption", { class: "visually-hidden" }, "Minions"),
        h("thead", {}, h("tr", {}, ["Minion", "Status", "Key", "OS", "IP", "Last seen"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ids.map((id) => row(id, keys[id], present[id], grains[id], seen[id])))));
    } catch (err) {
      summary.textContent = "";
      replace(table, failure(err, "The minion list could not be read"));
    } finally {
      busy = false;
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  refresh.addEventListener("click", load);
  let timer = null;
  const off = ctx.stream.subscribe((ev) => {
    if (/^(?:rx|salt)\/(?:key(?:\/.*)?|minion\/[^/]+\/start)$/.test(ev.tag)) {
      clearTimeout(timer);
      timer = setTimeout(load, 500);
    }
  });
  load();
  const every = setInterval(load, EVERY_MS);
  return () => {
    off();
    clearTimeout(timer);
    clearInterval(every);
  };
}
