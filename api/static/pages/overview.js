// The overview: minions up (presence), keys waiting, jobs per hour over the last 24 hours (jobs.list_jobs) and
// the failure rate of the newest jobs' minion results (jobs.exit_success), with a hand-drawn chart.

import { barChart } from "../chart.js";
import { h, heading, jidTime, replace } from "../dom.js";
import { failure, keyStates, presentMinions } from "./common.js";

const HOURS = 24;
const SAMPLE = 25;      // jobs whose results are checked for the failure rate
const SETTLE_MS = 30e3; // younger jobs may still be running: not counted as failures yet

function card(label, value, detail, kind) {
  return h("div", { class: ["card", "stat", kind] }, h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value), detail ? h("div", { class: "stat-detail" }, detail) : null);
}

async function failures(api, jids) {
  const settled = await Promise.allSettled(jids.map((jid) => api.runner("jobs.exit_success", { jid })));
  const failedJobs = new Set();
  let results = 0;
  let failed = 0;
  settled.forEach((s, i) => {
    if (s.status !== "fulfilled" || !s.value || typeof s.value !== "object") return;
    for (const ok of Object.values(s.value)) {
      results += 1;
      if (ok !== true) {
        failed += 1;
        failedJobs.add(jids[i]);
      }
    }
  });
  return { results, failed, failedJobs };
}

export function mount(ctx, main) {
  const cards = h("div", { class: "cards" }, h("p", {}, "Loading…"));
  const chart = h("div", {});
  const refresh = h("button", { type: "button" }, "Refresh");
  main.append(h("div", { class: "page-head" }, heading("Overview"), refresh), cards, chart);

  async function load() {
    try {
      const now = Date.now();
      const since = Math.floor(now / 3600e3) * 3600 - (HOURS - 1) * 3600;
      const [keys, present, jobs] = await Promise.all([
        keyStates(ctx.api), presentMinions(ctx.api).catch(() => null),
        ctx.api.runner("jobs.list_jobs", { start_time: since })]);
      const accepted = Object.values(keys).filter((s) => s === "accepted").length;
      const pending = Object.values(keys).filter((s) => s === "pending").length;
      const up = present ? Object.keys(present).filter((id) => keys[id] === "accepted").length : null;
      const jids = Object.keys(jobs || {}).filter((jid) => jidTime(jid)).sort().reverse();
      const lastHour = jids.filter((jid) => now - jidTime(jid).getTime() < 3600e3).length;
      const sample = jids.filter((jid) => now - jidTime(jid).getTime() > SETTLE_MS).slice(0, SAMPLE);
      const rate = await failures(ctx.api, sample);
      const pct = rate.results ? `${((100 * rate.failed) / rate.results).toFixed(1)} %` : "–";
      replace(cards,
        card("Minions up", up === null ? "?" : `${up} / ${accepted}`, up === null ? "the master is not running" : "connected / accepted",
             up !== null && up < accepted ? "warn" : "good"),
        card("Keys pending", String(pending), pending ? "see Keys" : "none waiting", pending ? "warn" : ""),
        card("Jobs in the last hour", String(lastHour), `${jids.length} in ${HOURS} h`),
        card("Failure rate", pct, `${rate.failed} of ${rate.results} minion results failed, newest ${sample.length} job(s)`,
             rate.failed ? "bad" : "good"));
      const buckets = [];
      for (let i = 0; i < HOURS; i += 1) {
        const start = (since + i * 3600) * 1000;
        const hour = new Date(start);
        const inside = jids.filter((jid) => {
          const t = jidTime(jid).getTime();
          return t >= start && t < start + 3600e3;
        });
        buckets.push({ label: `${String(hour.getHours()).padStart(2, "0")}:00`, total: inside.length,
                       failed: inside.filter((jid) => rate.failedJobs.has(jid)).length });
      }
      replace(chart, barChart(buckets, { title: `Jobs per hour, last ${HOURS} hours`, unit: "jobs" }));
    } catch (err) {
      replace(cards, failure(err, "The overview could not be read"));
    }
  }
  refresh.addEventListener("click", load);
  load();
}
