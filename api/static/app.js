// The dashboard's shell: the session, the hash router (#/minions, #/jobs/<jid>, ...), the navigation, the
// confirmation dialog, the live region, and the one event stream every page shares.

import { Api } from "./api.js";
import { h, replace } from "./dom.js";
import { EventStream } from "./events.js";
import * as login from "./pages/login.js";
import * as overview from "./pages/overview.js";
import * as minions from "./pages/minions.js";
import * as run from "./pages/run.js";
import * as jobs from "./pages/jobs.js";
import * as keys from "./pages/keys.js";
import * as live from "./pages/live.js";

const PAGES = { login, overview, minions, run, jobs, keys, events: live };
const $ = (id) => document.getElementById(id);

const api = new Api(() => {
  stream.stop();
  go("login", "Your session ended: log in again.");
});
const stream = new EventStream(api);
let cleanup = null;
let loginNote = "";

/** Say something to screen readers (the polite live region). */
function announce(text) {
  const region = $("announce");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 30);
}

/** Ask before doing something: resolves true when the user chose the confirming button. */
function confirmDialog({ title, body, ok = "OK", danger = false }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  replace($("confirm-body"), body);
  const okButton = $("confirm-ok");
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "primary";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

function go(page, note = "") {
  loginNote = note;
  if (location.hash !== `#/${page}`) location.hash = `#/${page}`;
  else route();
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { name: parts[0] || "overview", params: parts.slice(1) };
}

function showChrome() {
  const logged = Boolean(api.token);
  $("nav").hidden = !logged;
  $("who").hidden = !logged;
  $("user").textContent = logged ? `${api.session.user} (${api.session.eauth})` : "";
}

function markCurrent(name) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function route() {
  let { name, params } = parseHash();
  if (!api.token && name !== "login") {
    go("login", loginNote);
    return;
  }
  if (api.token && name === "login") name = "overview";
  if (!PAGES[name]) name = "overview";
  if (cleanup) cleanup();
  cleanup = null;
  showChrome();
  markCurrent(name);
  if (api.token) stream.start();
  const main = $("main");
  main.replaceChildren();
  const ctx = { api, stream, announce, confirm: confirmDialog, go, note: loginNote, loggedIn: onLogin };
  loginNote = "";
  try {
    cleanup = (await PAGES[name].mount(ctx, main, params)) || null;
  } catch (err) {
    main.append(h("p", { class: "error", role: "alert" }, `This page failed: ${err.message}`));
  }
  const title = main.querySelector("h1");
  document.title = title ? `${title.textContent} · rx` : "rx dashboard";
  if (title && !main.contains(document.activeElement)) title.focus();
}

function onLogin() {
  stream.start();
  go("overview");
}

function watchStream() {
  const el = $("stream-state");
  const words = { connecting: "events: connecting", live: "events: live", retrying: "events: reconnecting",
                  closed: "events: off" };
  stream.onState((state) => {
    el.textContent = words[state] || state;
    el.dataset.state = state;
  });
}

$("logout").addEventListener("click", async () => {
  stream.stop();
  try {
    await api.logout();
  } catch {
    api.forget();
  }
  go("login", "You are logged out.");
});

watchStream();
window.addEventListener("hashchange", route);
route();
