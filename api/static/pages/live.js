// The live event stream: the master's events as rx-api sends them on /events, newest first, filtered by a tag
// glob (rx/job/*/ret/*, salt/key, ...); paused, it keeps counting without redrawing.

import { clock, field, h, heading, replace, show } from "../dom.js";

const SHOWN = 200;

/** A tag glob (* any run of characters, ? one) as a RegExp; an empty glob matches every tag. */
export function tagMatcher(glob) {
  const text = glob.trim();
  if (!text) return () => true;
  const re = new RegExp(`^${text.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  return (tag) => re.test(tag);
}

function eventRow(ev) {
  const data = show(ev.data);
  return h("li", { class: "event" },
    h("div", { class: "event-head" }, h("time", {}, clock(ev.time)), " ", h("code", { class: "tag" }, ev.tag)),
    h("details", {}, h("summary", {}, data.length > 120 ? `${data.slice(0, 120).replace(/\s+/g, " ")}…` : data.replace(/\s+/g, " ")),
      h("pre", { class: "output" }, data)));
}

export function mount(ctx, main) {
  const filter = h("input", { name: "tag", autocomplete: "off", spellcheck: "false", placeholder: "rx/job/*" });
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const speak = h("input", { type: "checkbox", name: "announce", id: "announce-events" });
  const clear = h("button", { type: "button" }, "Clear");
  const count = h("p", { class: "summary" });
  const list = h("ol", { class: "events", role: "log", "aria-live": "off", "aria-label": "Events, newest first" });
  main.append(heading("Live events"),
    h("form", { class: "inline", role: "search", "aria-label": "Filter events" },
      field("Tag filter", filter, "a glob: rx/job/*/ret/*, rx/key, salt/job/*"),
      h("div", { class: "field check" }, speak, h("label", { for: "announce-events" }, "Read new events aloud")),
      pause, clear),
    count, list);

  let match = tagMatcher("");
  let paused = false;
  let seen = 0;
  let events = [...ctx.stream.recent];

  function render() {
    const shown = events.filter((ev) => match(ev.tag)).slice(-SHOWN).reverse();
    replace(list, shown.map(eventRow));
    count.textContent = `${shown.length} shown of ${events.length} received${paused ? " (paused)" : ""}.`;
  }

  filter.addEventListener("input", () => {
    try {
      match = tagMatcher(filter.value);
      filter.removeAttribute("aria-invalid");
    } catch {
      filter.setAttribute("aria-invalid", "true");
    }
    render();
  });
  filter.form.addEventListener("submit", (ev) => ev.preventDefault());
  speak.addEventListener("change", () => list.setAttribute("aria-live", speak.checked ? "polite" : "off"));
  pause.addEventListener("click", () => {
    paused = !paused;
    seen = 0;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    render();
  });
  clear.addEventListener("click", () => {
    events = [];
    render();
  });
  const off = ctx.stream.subscribe((ev) => {
    events.push(ev);
    if (events.length > 1000) events.splice(0, events.length - 1000);
    seen += 1;
    if (paused) {
      count.textContent = `${seen} received while paused.`;
      return;
    }
    if (!match(ev.tag)) return;
    list.prepend(eventRow(ev));
    while (list.children.length > SHOWN) list.lastChild.remove();
    count.textContent = `${list.children.length} shown of ${events.length} received.`;
  });
  render();
  return off;
}
