// Keys by state (wheel key.list_all) with accept / reject / delete.  Every action first shows the key's
// fingerprint (wheel key.finger) in a confirmation dialog, so the operator compares it with the minion's own
// (`rx-call --local key.finger` on the minion) before trusting it.

import { h, heading, replace } from "../dom.js";
import { badge, byId, failure, KEY_LISTS } from "./common.js";

const ACTIONS = {
  accepted: ["reject", "delete"], pending: ["accept", "reject", "delete"], rejected: ["accept", "delete"],
  denied: ["delete"],
};
const VERB = { accept: "Accept", reject: "Reject", delete: "Delete" };

/** A glob that matches exactly this id (the wheel key functions take fnmatch patterns; sent in a list, so a
 * comma in an id is not read as a separator). */
export function exactGlob(id) {
  return id.replace(/[*?[\]]/g, (c) => `[${c}]`);
}

async function fingerprint(api, id) {
  const found = (await api.wheel("key.finger", { match: [exactGlob(id)] })) || {};
  for (const list of Object.values(found)) {
    if (list && typeof list === "object" && typeof list[id] === "string") return list[id];
  }
  return null;
}

function actionArgs(action, state, id) {
  const kwargs = { match: [exactGlob(id)] };
  if (action === "accept" && state === "rejected") kwargs.include_rejected = true;
  if (action === "reject" && state === "accepted") kwargs.include_accepted = true;
  return kwargs;
}

export function mount(ctx, main) {
  const body = h("div", {});
  const refresh = h("button", { type: "button" }, "Refresh");
  const note = h("p", { class: "summary", "aria-live": "polite", tabindex: "-1" });
  let shown = null;
  main.append(h("div", { class: "page-head" }, heading("Keys"), refresh), note, body);

  async function act(action, state, id, button) {
    let fp;
    try {
      fp = await fingerprint(ctx.api, id);
    } catch (err) {
      note.textContent = `The fingerprint of ${id} could not be read: ${err.message}`;
      return;
    }
    const ok = await ctx.confirm({
      title: `${VERB[action]} the key of ${id}?`,
      body: [h("p", {}, `Minion: `, h("strong", { class: "minion" }, id), ` (${state})`),
             h("p", {}, "Fingerprint: ", h("code", { class: "fingerprint" }, fp || "unknown")),
             h("p", { class: "hint" }, action === "accept"
               ? "Compare it with the minion's own (rx-call --local key.finger on the minion) before accepting."
               : action === "delete" ? "The minion must be accepted again before it can run jobs." : "The minion will be refused.")],
      ok: VERB[action], danger: action !== "accept" });
    if (!ok) {
      button.focus();
      return;
    }
    try {
      await ctx.api.wheel(`key.${action}`, actionArgs(action, state, id));
      note.textContent = `${VERB[action]}: ${id} done.`;
      ctx.announce(note.textContent);
    } catch (err) {
      note.textContent = `${VERB[action]} ${id} failed: ${err.message}`;
    }
    await load();
    note.focus();
  }

  function section(state, ids) {
    return h("section", { class: "keys", "aria-labelledby": `keys-${state}` },
      h("h2", { id: `keys-${state}` }, `${state[0].toUpperCase()}${state.slice(1)} `, badge(String(ids.length), state)),
      ids.length ? h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Minion"), h("th", { scope: "col" }, "Actions"))),
        h("tbody", {}, ids.map((id) => h("tr", { dataset: { minion: id } },
          h("th", { scope: "row" }, id),
          h("td", { class: "actions" }, ACTIONS[state].map((action) => {
            const b = h("button", { type: "button", class: action === "accept" ? "primary" : action === "delete" ? "danger" : "",
                                    "aria-label": `${VERB[action]} ${id}` }, VERB[action]);
            b.addEventListener("click", () => act(action, state, id, b));
            return b;
          })))))) : h("p", { class: "empty" }, "None."));
  }

  async function load() {
    try {
      const listing = (await ctx.api.wheel("key.list_all")) || {};
      const text = JSON.stringify(KEY_LISTS.map(([list]) => listing[list]));
      if (text === shown) return;
      shown = text;
      replace(body, KEY_LISTS.map(([list, state]) =>
        section(state, (Array.isArray(listing[list]) ? listing[list] : []).map(String).sort(byId))));
    } catch (err) {
      shown = null;
      replace(body, failure(err, "The keys could not be read"));
    }
  }
  refresh.addEventListener("click", load);
  let timer = null;
  const off = ctx.stream.subscribe((ev) => {
    if (/^(?:rx|salt)\/(?:key|auth)$/.test(ev.tag)) {
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    }
  });
  load();
  return () => {
    off();
    clearTimeout(timer);
  };
}
