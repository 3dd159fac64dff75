// Building the page from data without ever parsing data as HTML: every string becomes a text node or an
// attribute value set through the DOM, so a minion id, grain, return, tag or error shows as the characters it
// holds.  No module of the dashboard uses innerHTML, outerHTML, insertAdjacentHTML or document.write.

const SVG_NS = "http://www.w3.org/2000/svg";
const EVENT_ATTR = /^on/i;

function setProps(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (EVENT_ATTR.test(name) || name === "style" || name === "srcdoc") {
      throw new Error(`dom: attribute ${name} is not allowed (use addEventListener and classes)`);
    }
    if (name === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value" || name === "checked" || name === "disabled" || name === "hidden") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("td", {class: "ok"}, "text", otherNode). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, children);
}

/** An SVG element (the overview's chart), same rules as h(). */
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  return append(el, children);
}

/** Replace all of `el`'s children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Any value as short readable text: strings as they are, the rest as indented JSON. */
export function show(value) {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** A time (seconds or milliseconds since the epoch, or a Date) as local "YYYY-MM-DD HH:MM:SS". */
export function clock(t) {
  const d = t instanceof Date ? t : new Date(t > 1e12 ? t : t * 1000);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A 20-digit jid (YYYYMMDDhhmmssffffff, UTC) as a Date, or null. */
export function jidTime(jid) {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})\d{3}$/.exec(String(jid));
  if (!m) return null;
  const [, y, mo, d, hh, mm, ss, ms] = m.map(Number);
  return new Date(Date.UTC(y, mo - 1, d, hh, mm, ss, ms));
}

/** Salt's StartTime ("2024, Jan 02 03:04:05.060708", UTC) as a Date, or null. */
export function saltTime(text) {
  const m = /^(\d{4}), (\w{3}) (\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(String(text || ""));
  if (!m) return null;
  const month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].indexOf(m[2]);
  if (month < 0) return null;
  const ms = Number((m[7] || "0").padEnd(3, "0").slice(0, 3));
  return new Date(Date.UTC(Number(m[1]), month, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
}

/** A labelled form field: the label names the control (for screen readers and the tests' getByLabel). */
export function field(label, control, hint) {
  const id = control.id || (control.id = `f-${Math.random().toString(36).slice(2, 9)}`);
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** A page's heading, focusable so the router can move focus to it (screen readers announce the page). */
export function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}
