// A small SVG line chart written for this dashboard: per-epoch series, log or linear y, vertical
// stage-boundary markers with labels, horizontal reference lines, a hover read-out and a legend
// that toggles series. Long series are thinned per pixel column keeping first/min/max/last, so a
// 10 000-epoch job draws as fast as a 100-epoch one. Every label is a text node.

import { clear, h, replace, s } from "./dom.js";
import { g } from "./format.js";

export const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const MARGIN = { left: 58, right: 16, top: 14, bottom: 30 };
const MAX_DOTS = 80; // draw point dots only while a series is this short

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
}

function linearTicks(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function logTicks(lo, hi) {
  const ticks = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k += 1) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  const decades = ticks.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
  return decades.length >= 2 ? decades : ticks;
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Keep at most ~4 points per pixel column: first, min, max, last (in x order). */
export function thin(points, xToPx, width) {
  if (points.length <= width * 2) return points;
  const out = [];
  let column = null;
  let bucket = [];
  const flush = () => {
    if (!bucket.length) return;
    const [first, last] = [bucket[0], bucket[bucket.length - 1]];
    let min = first;
    let max = first;
    for (const p of bucket) {
      if (p[1] < min[1]) min = p;
      if (p[1] > max[1]) max = p;
    }
    const keep = [...new Set([first, min, max, last])].sort((a, b) => a[0] - b[0]);
    out.push(...keep);
    bucket = [];
  };
  for (const p of points) {
    const c = Math.floor(xToPx(p[0]));
    if (c !== column) {
      flush();
      column = c;
    }
    bucket.push(p);
  }
  flush();
  return out;
}

export class LineChart {
  /**
   * @param figure a <figure> to draw into
   * @param options {title, log, height, yFormat, emptyText, xLabel, xPad, xMinStep}
   */
  constructor(figure, options = {}) {
    this.figure = figure;
    this.options = { height: 230, log: false, yFormat: (v) => g(v, 3), emptyText: "no epochs yet", ...options };
    this.series = [];
    this.markers = [];
    this.hlines = [];
    this.hidden = new Set();
    this.legend = h("span", { class: "legend" });
    this.titleEl = h("span", { class: "chart-title", text: this.options.title || "" });
    this.plot = h("div", { class: "plot" });
    this.tooltip = h("div", { class: "tooltip", hidden: true });
    replace(figure, h("figcaption", {}, this.titleEl, this.legend), this.plot);
    figure.dataset.points = "0";
    figure.dataset.markers = "0";
    if (window.ResizeObserver) new ResizeObserver(() => this.schedule()).observe(this.plot);
  }

  /** series: [{name, color, points: [[x, y|null], ...], dash}], markers: [{x, label, short, color}] */
  update({ series = [], markers = [], hlines = [] }) {
    this.series = series;
    this.markers = markers;
    this.hlines = hlines;
    this.renderLegend();
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  renderLegend() {
    clear(this.legend);
    for (const serie of this.series) {
      const swatch = h("span", { class: ["swatch", serie.dash && "dashed"] });
      swatch.style.background = serie.color;
      const item = h(
        "button",
        { type: "button", class: ["legend-item", this.hidden.has(serie.name) && "off"], title: "show / hide" },
        swatch,
        serie.name,
      );
      item.addEventListener("click", () => {
        if (this.hidden.has(serie.name)) this.hidden.delete(serie.name);
        else this.hidden.add(serie.name);
        this.renderLegend();
        this.schedule();
      });
      this.legend.append(item);
    }
  }

  usable(points) {
    return points.filter(([x, y]) => Number.isFinite(x) && y !== null && Number.isFinite(y) && (!this.options.log || y > 0));
  }

  render() {
    const width = Math.max(260, this.plot.clientWidth || 600);
    const height = this.options.height;
    const all = this.series.map((serie) => ({ ...serie, points: this.usable(serie.points) }));
    const total = all.reduce((n, serie) => n + serie.points.length, 0);
    this.figure.dataset.points = String(total);
    this.figure.dataset.markers = String(this.markers.length);
    if (!total) {
      replace(this.plot, h("div", { class: "empty", text: this.options.emptyText }), this.tooltip);
      return;
    }
    const visible = all.filter((serie) => !this.hidden.has(serie.name));
    const frame = this.frame(all, visible, width, height);
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "svg", role: "img", "aria-label": this.options.title || "chart" });
    this.drawAxes(svg, frame);
    this.drawMarkers(svg, frame);
    for (const serie of visible) this.drawSeries(svg, frame, serie);
    this.drawHover(svg, frame, visible);
    replace(this.plot, svg, this.tooltip);
  }

  frame(all, visible, width, height) {
    const xs = all.flatMap((serie) => serie.points.map((p) => p[0])).concat(this.markers.map((m) => m.x));
    let [x0, x1] = extent(xs);
    const xPad = this.options.xPad ?? 0.5; // half an epoch; 0 for curves on [0, 1]
    x0 -= xPad;
    x1 += xPad;
    const ys = (visible.length ? visible : all).flatMap((serie) => serie.points.map((p) => p[1]));
    let [y0, y1] = extent(ys.concat(this.hlines.map((line) => line.y).filter((y) => !this.options.log || y > 0)));
    const log = this.options.log;
    if (log) {
      y0 /= 1.4;
      y1 *= 1.4;
    } else {
      const pad = y1 > y0 ? (y1 - y0) * 0.08 : Math.max(Math.abs(y0) * 0.05, 0.01);
      y0 -= pad;
      y1 += pad;
    }
    const inner = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom };
    const fy = log ? (v) => Math.log10(v) : (v) => v;
    const x = (v) => inner.left + ((v - x0) / (x1 - x0)) * (inner.right - inner.left);
    const y = (v) => inner.bottom - ((fy(v) - fy(y0)) / (fy(y1) - fy(y0))) * (inner.bottom - inner.top);
    const invertX = (px) => x0 + ((px - inner.left) / (inner.right - inner.left)) * (x1 - x0);
    return { x, y, invertX, x0, x1, y0, y1, inner, width, height };
  }

  drawAxes(svg, f) {
    const yTicks = this.options.log ? logTicks(f.y0, f.y1) : linearTicks(f.y0, f.y1, 5);
    for (const v of yTicks) {
      const py = f.y(v);
      svg.append(s("line", { class: "grid", x1: f.inner.left, x2: f.inner.right, y1: py, y2: py }));
      svg.append(s("text", { class: "tick", x: f.inner.left - 6, y: py + 4, "text-anchor": "end" }, this.options.yFormat(v)));
    }
    const step = Math.max(this.options.xMinStep ?? 1, niceStep(f.x1 - f.x0, Math.max(2, Math.floor((f.inner.right - f.inner.left) / 70))));
    for (let v = Math.ceil(f.x0 / step) * step; v <= f.x1; v += step) {
      const px = f.x(v);
      svg.append(s("line", { class: "grid x", x1: px, x2: px, y1: f.inner.top, y2: f.inner.bottom }));
      svg.append(s("text", { class: "tick", x: px, y: f.inner.bottom + 16, "text-anchor": "middle" }, g(v, 6)));
    }
    svg.append(s("rect", { class: "frame", x: f.inner.left, y: f.inner.top, width: f.inner.right - f.inner.left, height: f.inner.bottom - f.inner.top }));
    svg.append(s("text", { class: "axis-label", x: f.inner.right, y: f.height - 2, "text-anchor": "end" }, this.options.xLabel || "epoch"));
  }

  drawMarkers(svg, f) {
    const rows = [];
    this.markers.forEach((marker) => {
      const px = f.x(marker.x);
      const group = s("g", { class: "marker", "data-label": marker.label });
      group.append(s("title", {}, marker.label));
      group.append(s("line", { x1: px, x2: px, y1: f.inner.top, y2: f.inner.bottom, stroke: marker.color || "#0f172a", "stroke-dasharray": "6 4" }));
      // stagger labels that would overlap the previous one
      let row = 0;
      while (rows[row] !== undefined && px - rows[row] < 150) row += 1;
      rows[row] = px;
      const right = px > f.inner.left + (f.inner.right - f.inner.left) * 0.62;
      const room = right ? px - f.inner.left : f.inner.right - px;
      const text = marker.short || marker.label;
      const chars = Math.max(6, Math.floor(room / 6.4) - 1);
      const shown = text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
      group.append(
        s("text", { class: "marker-label", x: right ? px - 4 : px + 4, y: f.inner.top + 12 + row * 13, "text-anchor": right ? "end" : "start", fill: marker.color || "#0f172a" }, shown),
      );
      svg.append(group);
    });
    for (const line of this.hlines) {
      if (this.options.log && line.y <= 0) continue;
      const py = f.y(line.y);
      svg.append(s("line", { class: "hline", x1: f.inner.left, x2: f.inner.right, y1: py, y2: py }));
      svg.append(s("text", { class: "hline-label", x: f.inner.left + 4, y: py + 12 }, line.label));
    }
  }

  drawSeries(svg, f, serie) {
    const points = thin(serie.points, f.x, f.inner.right - f.inner.left);
    const thinned = points.length < serie.points.length; // thinned points are far apart by design
    let d = "";
    let previous = null;
    for (const [px, py] of points) {
      const gap = !thinned && previous !== null && px - previous > 1.0001;
      d += `${d && !gap ? "L" : "M"}${f.x(px).toFixed(1)},${f.y(py).toFixed(1)}`;
      previous = px;
    }
    svg.append(s("path", { class: "series", d, stroke: serie.color, "stroke-dasharray": serie.dash ? "5 4" : null, "data-name": serie.name }));
    if (serie.points.length <= MAX_DOTS) {
      const dots = s("g", { class: "dots", fill: serie.color });
      for (const [px, py] of points) dots.append(s("circle", { cx: f.x(px).toFixed(1), cy: f.y(py).toFixed(1), r: 2.6 }));
      svg.append(dots);
    }
  }

  drawHover(svg, f, visible) {
    const guide = s("line", { class: "guide", y1: f.inner.top, y2: f.inner.bottom, visibility: "hidden" });
    const overlay = s("rect", { class: "overlay", x: f.inner.left, y: f.inner.top, width: f.inner.right - f.inner.left, height: f.inner.bottom - f.inner.top });
    const xs = [...new Set(visible.flatMap((serie) => serie.points.map((p) => p[0])))].sort((a, b) => a - b);
    const lookup = visible.map((serie) => ({ serie, at: new Map(serie.points.map((p) => [p[0], p[1]])) }));
    overlay.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect();
      const target = f.invertX(event.clientX - box.left);
      let best = xs[0];
      for (const v of xs) if (Math.abs(v - target) < Math.abs(best - target)) best = v;
      const px = f.x(best);
      guide.setAttribute("x1", px);
      guide.setAttribute("x2", px);
      guide.setAttribute("visibility", "visible");
      const rows = lookup
        .filter(({ at }) => at.has(best))
        .map(({ serie, at }) => {
          const swatch = h("span", { class: "swatch" });
          swatch.style.background = serie.color;
          return h("div", {}, swatch, `${serie.name}: ${this.options.yFormat(at.get(best))}`);
        });
      replace(this.tooltip, h("div", { class: "tooltip-title", text: `${this.options.xLabel || "epoch"} ${g(best, 6)}` }), rows);
      this.tooltip.hidden = false;
      const left = px + 14 + 200 > f.width ? px - 14 - 200 : px + 14;
      this.tooltip.style.left = `${Math.max(0, left)}px`;
      this.tooltip.style.top = `${f.inner.top + 4}px`;
    });
    overlay.addEventListener("mouseleave", () => {
      guide.setAttribute("visibility", "hidden");
      this.tooltip.hidden = true;
    });
    svg.append(guide, overlay);
  }
}
