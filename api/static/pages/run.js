// The command box: target, function (completed from sys.list_functions), arguments.  The job is published with
// local_async; its returns stream in over /events as each minion answers.  When the wait is over, the minions
// that did not return are looked up in the job store (jobs.lookup_jid missing=True) and shown with a reason.

import { ArgsError, parseArgs } from "../args.js";
import { field, h, heading, replace } from "../dom.js";
import { jobReturn } from "../events.js";
import { presentMinions, targetTypeSelect } from "./common.js";
import { JobResults, missingReason, timing } from "./results.js";

const COMMON = ["test.ping", "test.version", "cmd.run", "grains.items", "grains.item", "sys.list_functions",
                "sys.doc", "pkg.list_pkgs", "service.status", "disk.usage", "status.uptime", "state.apply"];
const FUNCS_KEY = "rx.functions";
let functions = null;

async function loadFunctions(api, tgt, tgtType) {
  if (functions) return functions;
  try {
    functions = JSON.parse(sessionStorage.getItem(FUNCS_KEY) || "null");
  } catch {
    functions = null;
  }
  if (functions) return functions;
  const out = (await api.lowstate([{ client: "local", tgt, tgt_type: tgtType, fun: "sys.list_functions", timeout: 5 }]))[0];
  const names = new Set(COMMON);
  for (const list of Object.values(out && typeof out === "object" ? out : {})) {
    for (const name of Array.isArray(list) ? list : []) if (typeof name === "string") names.add(name);
  }
  functions = [...names].sort();
  sessionStorage.setItem(FUNCS_KEY, JSON.stringify(functions));
  return functions;
}

function waitLive(stream, seconds) {
  if (stream.state === "live") return Promise.resolve(true);
  return new Promise((resolve) => {
    let off = () => {};
    const timer = setTimeout(() => { off(); resolve(false); }, seconds * 1000);
    off = stream.onState((state) => {
      if (state === "live") {
        clearTimeout(timer);
        setTimeout(() => off(), 0);
        resolve(true);
      }
    });
  });
}

export function mount(ctx, main) {
  const tgt = h("input", { name: "tgt", value: sessionStorage.getItem("rx.run.tgt") || "*", required: true,
                           autocomplete: "off", spellcheck: "false" });
  const type = targetTypeSelect();
  const fun = h("input", { name: "fun", list: "fun-list", required: true, autocomplete: "off", spellcheck: "false",
                           value: "test.ping", pattern: "[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*" });
  const funList = h("datalist", { id: "fun-list" }, COMMON.map((f) => h("option", { value: f })));
  const args = h("input", { name: "args", autocomplete: "off", spellcheck: "false" });
  const wait = h("input", { name: "wait", type: "number", min: "1", max: "3600", value: "15" });
  const button = h("button", { type: "submit", class: "primary" }, "Run");
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "command", "aria-label": "Run a command" },
    field("Target", tgt), field("Target type", type),
    field("Function", fun, "module.function; type to complete (from sys.list_functions)"), funList,
    field("Arguments", args, "as on the rx command line: quote a word with spaces ('exit 3'); name=value is a keyword"),
    field("Wait (seconds)", wait), button, error);
  const results = h("section", { class: "job", "aria-label": "Job results" });
  main.append(heading("Run a command"), form, results);

  let stopJob = () => {};
  fun.addEventListener("focus", async () => {
    try {
      const names = await loadFunctions(ctx.api, tgt.value.trim() || "*", type.value);
      replace(funList, names.map((f) => h("option", { value: f })));
    } catch {
      // completion is a convenience: the common names stay offered
    }
  }, { once: true });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    let parsed;
    try {
      parsed = parseArgs(args.value);
    } catch (err) {
      if (!(err instanceof ArgsError)) throw err;
      error.textContent = `Arguments: ${err.message}`;
      args.focus();
      return;
    }
    stopJob();
    sessionStorage.setItem("rx.run.tgt", tgt.value.trim());
    button.disabled = true;
    try {
      stopJob = await runJob(ctx, results, { tgt: tgt.value.trim(), tgtType: type.value, fun: fun.value.trim(),
                                             ...parsed, wait: Math.max(1, Number(wait.value) || 15) });
    } catch (err) {
      error.textContent = `The job was not published: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return () => stopJob();
}

async function runJob(ctx, section, job) {
  const view = new JobResults({ live: true });
  const head = h("h2", {}, `${job.fun} on ${job.tgt}`);
  const state = h("p", { class: "job-state" }, "Publishing…");
  replace(section, head, state, view.el);
  const live = await waitLive(ctx.stream, 3);
  const early = [];
  let jid = null;
  const take = (ret) => {
    if (!view.has(ret.id)) view.returned(ret.id, ret.ret, ret.retcode, ret.success, timing(ret.jid, ret));
    if (!view.waiting().length) finish();
  };
  const off = ctx.stream.subscribe((ev) => {
    const ret = jobReturn(ev.tag, ev.data);
    if (!ret) return;
    if (jid === null) early.push(ret);
    else if (ret.jid === jid) take(ret);
  });
  let timer = null;
  let done = false;
  const published = await ctx.api.publish(job.tgt, job.fun, job.arg, job.kwarg, job.tgtType).catch((err) => {
    off();
    throw err;
  });
  jid = published.jid;
  replace(head, `${job.fun} on ${job.tgt} `, h("a", { href: `#/jobs/${jid}` }, `job ${jid}`));
  state.textContent = live ? `Waiting for ${published.minions.length} minion(s)…` : "Waiting (the event stream is not live: polling the job store)…";
  view.expect(published.minions);
  ctx.announce(`Job ${jid} published to ${published.minions.length} minion(s)`);
  early.filter((r) => r.jid === jid).forEach(take);

  async function finish() {
    if (done) return;
    done = true;
    off();
    clearTimeout(timer);
    const left = view.waiting();
    if (left.length) await lookUpMissing(ctx, jid, view, job.wait);
    state.textContent = "Done.";
    ctx.announce(`Job ${jid} done: ${view.counts.textContent}`);
  }

  const started = Date.now();
  async function poll() {
    if (done) return;
    if (!live) await fillFromStore(ctx, jid, view).catch(() => {});
    if (!view.waiting().length || Date.now() - started >= job.wait * 1000) finish();
    else timer = setTimeout(poll, live ? 500 : 1000);
  }
  if (!published.minions.length) finish();
  else timer = setTimeout(poll, live ? 500 : 1000);
  return () => {
    done = true;
    off();
    clearTimeout(timer);
  };
}

/** Returns the job store holds (the polling path, and any return whose event was missed). */
async function fillFromStore(ctx, jid, view) {
  const printed = await ctx.api.runner("jobs.print_job", { jid });
  const result = (printed && printed[jid] && printed[jid].Result) || {};
  for (const [id, r] of Object.entries(result)) {
    if (!view.has(id) && r && typeof r === "object") view.returned(id, r.return, r.retcode, r.success, timing(jid, r));
  }
}

/** At the end of the wait: the store's returns, then each minion still missing with its reason. */
async function lookUpMissing(ctx, jid, view, waited) {
  try {
    await fillFromStore(ctx, jid, view);
    const left = view.waiting();
    if (!left.length) return;
    const [lookup, present] = await Promise.all([
      ctx.api.runner("jobs.lookup_jid", { jid, missing: true, returned: false }),
      presentMinions(ctx.api).catch(() => null)]);
    for (const id of left) {
      const said = lookup && typeof lookup === "object" ? lookup[id] : undefined;
      view.missing(id, missingReason(said, present ? id in present : undefined, waited));
    }
  } catch (err) {
    for (const id of view.waiting()) view.missing(id, `Not returned; the job store could not be read: ${err.message}`);
  }
}
