// Job history (runner jobs.list_jobs, newest first, filtered by function) and one job's details (#/jobs/<jid>:
// jobs.print_job for who returned what and when, jobs.lookup_jid missing=True for who did not).

import { clock, field, h, heading, jidTime, replace, saltTime, show } from "../dom.js";
import { failure, presentMinions } from "./common.js";
import { JobResults, missingReason, timing } from "./results.js";

const LIMIT = 200;

export function mount(ctx, main, params) {
  if (params[0]) return details(ctx, main, params[0]);
  return history(ctx, main);
}

function started(jid, info) {
  const t = saltTime(info.StartTime) || jidTime(jid);
  return t ? clock(t) : String(info.StartTime || "");
}

function history(ctx, main) {
  const search = h("input", { name: "search_function", autocomplete: "off", spellcheck: "false", placeholder: "cmd.*" });
  const form = h("form", { class: "inline", role: "search", "aria-label": "Filter jobs" },
    field("Function", search, "a glob: test.*, cmd.run"), h("button", { type: "submit", class: "primary" }, "Filter"));
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const table = h("div", { class: "table-wrap" });
  const refresh = h("button", { type: "button" }, "Refresh");
  main.append(h("div", { class: "page-head" }, heading("Jobs"), refresh), form, summary, table);

  async function load() {
    summary.textContent = "Loading…";
    try {
      const kwargs = { limit: LIMIT };
      if (search.value.trim()) kwargs.search_function = search.value.trim();
      const jobs = (await ctx.api.runner("jobs.list_jobs", kwargs)) || {};
      const jids = Object.keys(jobs).sort().reverse();
      summary.textContent = `${jids.length} job(s)${jids.length >= LIMIT ? ` (the newest ${LIMIT})` : ""}.`;
      replace(table, h("table", { class: "grid" },
        h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
        h("thead", {}, h("tr", {}, ["Job", "Function", "Arguments", "Target", "User", "Started", "Minions"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, jids.map((jid) => {
          const info = jobs[jid] || {};
          return h("tr", { dataset: { jid } },
            h("th", { scope: "row" }, h("a", { href: `#/jobs/${jid}` }, jid)),
            h("td", {}, show(info.Function)),
            h("td", { class: "args" }, Array.isArray(info.Arguments) ? info.Arguments.map((a) => show(a)).join(" ") : ""),
            h("td", {}, `${show(info.Target)}${info["Target-type"] && info["Target-type"] !== "glob" ? ` (${info["Target-type"]})` : ""}`),
            h("td", {}, show(info.User)),
            h("td", {}, started(jid, info)),
            h("td", { class: "num" }, Array.isArray(info.Minions) ? String(info.Minions.length) : ""));
        }))));
    } catch (err) {
      summary.textContent = "";
      replace(table, failure(err, "The job history could not be read"));
    }
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  refresh.addEventListener("click", load);
  load();
}

async function details(ctx, main, jid) {
  if (!/^\d{20}$/.test(jid)) {
    main.append(heading("Job"), h("p", { class: "error", role: "alert" }, "That is not a job id (20 digits)."));
    return;
  }
  const body = h("div", {}, h("p", {}, "Loading…"));
  main.append(h("p", {}, h("a", { href: "#/jobs" }, "← all jobs")), heading(`Job ${jid}`), body);
  try {
    const [printed, lookup, present] = await Promise.all([
      ctx.api.runner("jobs.print_job", { jid }),
      ctx.api.runner("jobs.lookup_jid", { jid, missing: true, returned: false }),
      presentMinions(ctx.api).catch(() => null)]);
    const info = (printed && printed[jid]) || {};
    const result = info.Result && typeof info.Result === "object" ? info.Result : {};
    const expected = Array.isArray(info.Minions) ? info.Minions.map(String) : [];
    const facts = [["Function", show(info.Function)], ["Arguments", Array.isArray(info.Arguments) ? info.Arguments.map((a) => show(a)).join(" ") : ""],
                   ["Target", `${show(info.Target)} (${show(info["Target-type"] || "glob")})`], ["User", show(info.User)],
                   ["Started", started(jid, info)], ["Expected", `${expected.length} minion(s)`],
                   ["Returned", `${Object.keys(result).length} minion(s)`]];
    const view = new JobResults();
    view.expect(expected);
    for (const [id, r] of Object.entries(result)) {
      if (r && typeof r === "object") view.returned(id, r.return, r.retcode, r.success, timing(jid, r));
    }
    for (const id of view.waiting()) {
      const said = lookup && typeof lookup === "object" ? lookup[id] : undefined;
      view.missing(id, missingReason(said, present ? id in present : undefined));
    }
    replace(body, h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("h2", {}, "Results"), view.el);
  } catch (err) {
    replace(body, failure(err, "This job could not be read"));
  }
}
