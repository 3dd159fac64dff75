// A small bar chart drawn by hand in SVG (no library): one bar per bucket, its failed part at the bottom in the
// failure colour.  The numbers are also in a table for screen readers (the SVG is one labelled image).

import { h, svg } from "./dom.js";

const W = 720;
const H = 180;
const PAD = { left: 36, right: 8, top: 10, bottom: 26 };

/** buckets: [{label, total, failed}] -> an element holding the SVG and its data table. */
export function barChart(buckets, { title, unit = "jobs" }) {
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const step = innerW / Math.max(1, buckets.length);
  const y = (v) => PAD.top + innerH - (v / max) * innerH;
  const ticks = [0, Math.ceil(max / 2), max].filter((v, i, a) => a.indexOf(v) === i);
  const total = buckets.reduce((n, b) => n + b.total, 0);
  const failed = buckets.reduce((n, b) => n + b.failed, 0);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                             "aria-label": `${title}: ${total} ${unit}, ${failed} failed` },
    ticks.map((v) => [
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid-line" }),
      svg("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, String(v))]),
    buckets.map((b, i) => {
      const x = PAD.left + i * step + step * 0.15;
      const w = step * 0.7;
      return svg("g", { class: "bar" },
        svg("title", {}, `${b.label}: ${b.total} ${unit}${b.failed ? `, ${b.failed} failed` : ""}`),
        svg("rect", { x, y: y(b.total), width: w, height: Math.max(0, y(b.failed) - y(b.total)), class: "bar-ok" }),
        b.failed ? svg("rect", { x, y: y(b.failed), width: w, height: PAD.top + innerH - y(b.failed), class: "bar-failed" }) : null,
        i % 3 === 0 ? svg("text", { x: x + w / 2, y: H - 8, class: "axis", "text-anchor": "middle" }, b.label) : null);
    }));
  const table = h("table", { class: "visually-hidden" },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Hour"), h("th", { scope: "col" }, unit), h("th", { scope: "col" }, "failed"))),
    h("tbody", {}, buckets.map((b) => h("tr", {}, h("th", { scope: "row" }, b.label), h("td", {}, String(b.total)), h("td", {}, String(b.failed))))));
  return h("figure", { class: "chart-box" }, chart, table,
    h("figcaption", {}, `${title}. `, h("span", { class: "legend ok" }, "ok"), " ", h("span", { class: "legend failed" }, "failed")));
}
