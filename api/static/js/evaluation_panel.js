// The evaluation panel, shared by the job page (a job's own before → after evaluation) and the
// evaluations page (one evaluation): the before/after table, PR and ROC curves with a threshold
// slider that recomputes precision, recall, F1 and the confusion matrix from the report's sweep
// (no request per move), and a gallery of the most confidently wrong crops served by this server.
// Every string from a report is set as text (dom.js); the API already made it visible (text.js).

import { LineChart, PALETTE } from "./chart.js";
import { h, replace } from "./dom.js";
import { f1 } from "./format.js";

const TABLE_COLUMNS = [
  ["tag", "Evaluation"], ["model", "Model"], ["domain", "Domain"], ["split", "Split"],
  ["f1", "F1 @ 0.5"], ["f1_at_threshold", "F1 @ threshold"], ["roc_auc", "ROC-AUC"], ["pr_auc", "PR-AUC"],
  ["accuracy", "Accuracy"],
];
const NUMERIC = new Set(["f1", "f1_at_threshold", "roc_auc", "pr_auc", "accuracy"]);

/** Precision, recall (of "open"), F1 and accuracy from one sweep row's counts. */
export function scores({ tp, fp, tn, fn }) {
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const f1score = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  const total = tp + fp + tn + fn;
  return { precision, recall, f1: f1score, accuracy: total ? (tp + tn) / total : 0, fpr: fp + tn ? fp / (fp + tn) : 0 };
}

/** The sweep row nearest to ``threshold`` (the sweep steps by 0.01). */
export function rowAt(sweep, threshold) {
  let best = sweep[0];
  for (const row of sweep) if (Math.abs(row.threshold - threshold) < Math.abs(best.threshold - threshold)) best = row;
  return best;
}

function beforeAfterTable(summary) {
  const rows = Array.isArray(summary.table) ? summary.table : [];
  const head = h("tr", {}, TABLE_COLUMNS.map(([key, label]) => h("th", { class: NUMERIC.has(key) ? "num" : null }, label)));
  const body = rows.map((row) =>
    h("tr", { "data-tag": row.tag }, TABLE_COLUMNS.map(([key]) => (NUMERIC.has(key) ? h("td", { class: "num" }, f1(row[key])) : h("td", {}, String(row[key] ?? "–"))))),
  );
  const forgetting = typeof summary.forgetting === "number"
    ? h("p", { class: ["muted", summary.forgetting > 0 ? "bad" : "good"], id: "eval-forgetting" }, `Forgetting on the old domain A (F1 before − after): ${summary.forgetting >= 0 ? "+" : ""}${summary.forgetting.toFixed(3)}`)
    : null;
  const threshold = typeof summary.threshold === "number" ? ` · chosen threshold ${summary.threshold.toFixed(2)} (${summary.rule || "rule"})` : "";
  return h("div", { class: "eval-table" },
    h("h3", {}, "Before → after"),
    h("p", { class: "muted" }, `split ${summary.split || "–"}${threshold}`),
    h("table", { class: "compact", id: "eval-before-after" }, h("thead", {}, head), h("tbody", {}, body)),
    forgetting);
}

function confusion(row) {
  const cell = (id, value, title) => h("td", { class: "num", id, title }, String(value));
  return h("table", { class: "compact confusion", id: "eval-confusion" },
    h("thead", {}, h("tr", {}, h("th", {}, "actual \\ predicted"), h("th", { class: "num" }, "open"), h("th", { class: "num" }, "closed"))),
    h("tbody", {},
      h("tr", {}, h("th", {}, "open"), cell("eval-tp", row.tp, "true positives"), cell("eval-fn", row.fn, "false negatives")),
      h("tr", {}, h("th", {}, "closed"), cell("eval-fp", row.fp, "false positives"), cell("eval-tn", row.tn, "true negatives"))));
}

function gallery(report, imageUrl) {
  const worst = Array.isArray(report.worst) ? report.worst : [];
  if (!worst.length) return h("p", { class: "muted" }, "No misclassified crops in this report.");
  return h("div", { class: "gallery", id: "eval-gallery" }, worst.map((item, i) =>
    h("figure", { class: "crop", "data-index": i },
      h("img", { src: imageUrl(i), alt: `crop ${i}: label ${item.label ? "open" : "closed"}`, loading: "lazy", width: 96, height: 96 }),
      h("figcaption", {},
        h("b", {}, item.label ? "open" : "closed"), ` · P(open) ${Number(item.p_open).toFixed(3)}`,
        h("br"), h("small", { class: "muted mono", title: item.source }, item.source)))));
}

/** The curves, slider, numbers, matrix and gallery of one report, in ``root``. */
export class ReportView {
  constructor(root) {
    this.root = root;
  }

  show(report, { worstUrl }) {
    const sweep = Array.isArray(report.sweep) ? report.sweep : [];
    this.report = report;
    this.sweep = sweep;
    const start = report.threshold && typeof report.threshold.value === "number" ? report.threshold.value : 0.5;
    this.slider = h("input", { type: "range", min: 0, max: 100, step: 1, value: Math.round(start * 100), id: "eval-slider", "aria-label": "threshold on P(open)" });
    this.slider.addEventListener("input", () => this.update());
    this.numbers = h("dl", { class: "eval-numbers" });
    this.matrix = h("div");
    const pr = h("figure", { class: "chart", id: "eval-pr" });
    const roc = h("figure", { class: "chart", id: "eval-roc" });
    const data = report.data || {};
    replace(this.root,
      h("p", { class: "muted" }, `${data.samples ?? "?"} images (open ${data.open ?? "?"}, closed ${data.closed ?? "?"}) · split ${data.split || "–"} · ROC-AUC ${f1(report.roc_auc)} · PR-AUC ${f1(report.pr_auc)}`),
      sweep.length ? h("div", { class: "slider-row" }, h("label", { for: "eval-slider" }, "Threshold on P(open)"), this.slider, h("output", { id: "eval-threshold" })) : h("p", { class: "muted" }, "This report has no threshold sweep."),
      h("div", { class: "eval-live" }, this.numbers, this.matrix),
      h("section", { class: "charts" }, pr, roc),
      h("h3", {}, "Most confidently wrong"),
      gallery(report, worstUrl));
    const curves = report.curves || {};
    this.prChart = new LineChart(pr, { title: "Precision-recall (open)", xLabel: "recall", xPad: 0, xMinStep: 0.05, yFormat: (v) => v.toFixed(2), emptyText: "no curve" });
    this.rocChart = new LineChart(roc, { title: "ROC", xLabel: "false positive rate", xPad: 0, xMinStep: 0.05, yFormat: (v) => v.toFixed(2), emptyText: "no curve" });
    this.curves = {
      pr: zip(curves.pr && curves.pr.recall, curves.pr && curves.pr.precision),
      roc: zip(curves.roc && curves.roc.fpr, curves.roc && curves.roc.tpr),
    };
    this.update();
  }

  update() {
    if (!this.sweep.length) {
      this.prChart.update({ series: [{ name: "PR", color: PALETTE[0], points: this.curves.pr }] });
      this.rocChart.update({ series: [{ name: "ROC", color: PALETTE[1], points: this.curves.roc }] });
      return;
    }
    const threshold = Number(this.slider.value) / 100;
    const row = rowAt(this.sweep, threshold);
    const at = scores(row);
    this.root.querySelector("#eval-threshold").textContent = threshold.toFixed(2);
    replace(this.numbers,
      ...[["precision", at.precision], ["recall", at.recall], ["F1", at.f1], ["accuracy", at.accuracy]].flatMap(([name, value]) => [
        h("dt", {}, name), h("dd", { id: `eval-${name.toLowerCase()}` }, value.toFixed(3))]));
    replace(this.matrix, confusion(row));
    const mark = (x, label) => [{ x, label, short: label, color: "#0f172a" }];
    this.prChart.update({
      series: [{ name: "PR", color: PALETTE[0], points: this.curves.pr }],
      markers: mark(at.recall, `recall ${at.recall.toFixed(2)}`), hlines: [{ y: at.precision, label: `precision ${at.precision.toFixed(2)}` }],
    });
    this.rocChart.update({
      series: [{ name: "ROC", color: PALETTE[1], points: this.curves.roc }],
      markers: mark(at.fpr, `FPR ${at.fpr.toFixed(2)}`), hlines: [{ y: at.recall, label: `TPR ${at.recall.toFixed(2)}` }],
    });
  }
}

function zip(xs, ys) {
  if (!Array.isArray(xs) || !Array.isArray(ys)) return [];
  return xs.map((x, i) => [Number(x), ys[i] === null || ys[i] === undefined ? null : Number(ys[i])]);
}

/**
 * The whole panel in ``root``: the before → after table (when ``summary`` has one), a choice of
 * report (one per tag), and the chosen report's view. ``worstUrl(tag, i)`` names a crop's image.
 */
export function renderPanel(root, { summary = null, reports = {}, worstUrl }) {
  const tags = Object.keys(reports);
  const view = h("div", { class: "report-view" });
  const reportView = new ReportView(view);
  const preferred = ["after_B", "before_B"].find((tag) => tags.includes(tag)) || tags[0];
  const choose = (tag) => reportView.show(reports[tag], { worstUrl: (i) => worstUrl(tag, i) });
  const picker = tags.length > 1
    ? h("label", { class: "inline" }, "Report ", h("select", { id: "eval-report", on: { change: (event) => choose(event.target.value) } },
      tags.map((tag) => h("option", { value: tag, selected: tag === preferred }, tag))))
    : null;
  replace(root, summary && Array.isArray(summary.table) && summary.table.length ? beforeAfterTable(summary) : null, picker, view);
  if (preferred) choose(preferred);
  return reportView;
}
