// Compare jobs: two charts (metrics chosen in the toolbar) with one curve per job, aligned by epoch
// or by epochs since stage-2 entry, plus a per-stage summary with the effect of unfreezing. A fork
// carries its parent's epochs up to the fork point, so branches line up with their common trunk.
// Jobs still running are refreshed every few seconds.

import { all, api, describe, jobUrl, pageUrl } from "./api.js";
import { LineChart, PALETTE } from "./chart.js";
import { renderEvaluationTable, renderSettingsDiff } from "./compare_eval.js";
import { $, h, liveIndicator, replace } from "./dom.js";
import { FINAL_STATES, f1, g, stateLabel } from "./format.js";
import { showWhoami } from "./session.js";
import { stage2Entry, stageSummary } from "./stages.js";

const REFRESH_MS = 5000;
const LABELS = {
  val_f1: "val F1", val_loss: "val loss", train_loss: "train loss", val_precision: "val precision",
  val_recall: "val recall", val_accuracy: "val accuracy", fisher_ratio: "Fisher ratio",
};
const form = $("#compare-options");
const charts = [new LineChart($("#chart-compare-1"), {}), new LineChart($("#chart-compare-2"), {})];
const runs = []; // [{job, inherited: rows, rows: Map(epoch -> row), color, label}]

function idsFromUrl() {
  const query = new URLSearchParams(location.search);
  const ids = query.getAll("ids").flatMap((value) => value.split(",")).map((id) => id.trim()).filter(Boolean);
  return [...new Set(ids)];
}

function optionsFromUrl() {
  const query = new URLSearchParams(location.search);
  if (query.get("m1") in LABELS) form.m1.value = query.get("m1");
  if (query.get("m2") in LABELS) form.m2.value = query.get("m2");
  form.align.value = query.get("align") === "stage2" ? "stage2" : "epoch";
}

function writeUrl() {
  const query = new URLSearchParams();
  for (const run of runs) query.append("ids", run.job.id);
  query.set("m1", form.m1.value);
  query.set("m2", form.m2.value);
  query.set("align", form.align.value);
  history.replaceState(null, "", `?${query}`);
}

/** The parent's rows up to the fork point, then the job's own (its own win on a shared epoch). */
function rowsOf(run) {
  const own = [...run.rows.values()].sort((a, b) => a.epoch - b.epoch);
  const first = own.length ? own[0].epoch : Infinity;
  return [...run.inherited.filter((row) => row.epoch < first), ...own];
}

async function inheritedRows(job) {
  const start = job.fork_from && job.resume_from ? Number(job.resume_from.epoch || 0) : 0;
  if (!job.parent_job_id || !start) return [];
  const rows = await all(`${jobUrl(job.parent_job_id)}/metrics`, "after_epoch", "next_after_epoch").catch(() => []);
  return rows.filter((row) => row.epoch <= start);
}

async function load(id, index) {
  const [job, rows] = await Promise.all([api(jobUrl(id)), all(`${jobUrl(id)}/metrics`, "after_epoch", "next_after_epoch")]);
  const [inherited, evaluation] = await Promise.all([inheritedRows(job), api(`${jobUrl(id)}/evaluation`).catch(() => null)]);
  return { job, inherited, evaluation, rows: new Map(rows.map((row) => [row.epoch, row])), color: PALETTE[index % PALETTE.length] };
}

function labelRuns() {
  const counts = new Map();
  for (const run of runs) counts.set(run.job.name, (counts.get(run.job.name) || 0) + 1);
  for (const run of runs) run.label = counts.get(run.job.name) > 1 ? `${run.job.name} (${run.job.id.slice(0, 6)})` : run.job.name;
}

function render() {
  const align = form.align.value;
  const skipped = [];
  const series = { [form.m1.value]: [], [form.m2.value]: [] };
  const markers = [];
  for (const run of runs) {
    const rows = rowsOf(run);
    const entry = stage2Entry(rows);
    if (align === "stage2" && entry === null) {
      skipped.push(run.label);
      continue;
    }
    const shift = align === "stage2" ? entry : 0;
    for (const metric of Object.keys(series)) {
      series[metric].push({ name: run.label, color: run.color, points: rows.map((row) => [row.epoch - shift, row[metric] ?? null]) });
    }
    if (align === "epoch" && entry !== null) markers.push({ x: entry - 0.5, label: `${run.label}: stage 2 from epoch ${entry}`, short: `stage 2 · ${run.label}`, color: run.color });
  }
  if (align === "stage2" && runs.length > skipped.length) markers.push({ x: -0.5, label: "stage-2 entry", color: "#d97706" });
  const xLabel = align === "stage2" ? "epochs since stage-2 entry" : "epoch";
  [form.m1.value, form.m2.value].forEach((metric, i) => {
    charts[i].options.xLabel = xLabel;
    charts[i].options.yFormat = metric.includes("loss") || metric === "fisher_ratio" ? (v) => g(v, 3) : (v) => v.toFixed(3);
    charts[i].titleEl.textContent = `${LABELS[metric]} by ${xLabel}`;
    charts[i].update({ series: series[metric], markers });
  });
  renderTable();
  renderEvaluationTable($("#compare-eval-body"), $("#compare-eval-note"), runs);
  renderSettingsDiff($("#compare-diff-head"), $("#compare-diff-body"), $("#compare-diff-note"), runs);
  $("#compare-note").textContent = skipped.length ? `Not in the stage-relative view (never reached stage 2): ${skipped.join(", ")}.` : "";
}

function renderTable() {
  replace(
    $("#compare-body"),
    runs.map((run) => {
      const summary = stageSummary(rowsOf(run));
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = run.color;
      const effect = summary.effect === null ? "–" : `${summary.effect >= 0 ? "+" : ""}${summary.effect.toFixed(3)}`;
      return h("tr", { "data-job-id": run.job.id },
        h("td", {}, swatch, h("a", { href: pageUrl(run.job.id) }, run.label), run.inherited.length ? h("small", { class: "muted" }, ` · fork at epoch ${run.inherited[run.inherited.length - 1].epoch}`) : null),
        h("td", {}, h("span", { class: `badge state-${run.job.state}` }, stateLabel(run.job.state))),
        h("td", { class: "num" }, summary.entry === null ? "–" : String(summary.entry)),
        h("td", { class: "num" }, f1(summary.bestStage1)),
        h("td", { class: "num" }, f1(summary.bestStage2)),
        h("td", { class: ["num", summary.effect !== null && (summary.effect >= 0 ? "good" : "bad")] }, effect),
      );
    }),
  );
}

async function refreshRunning() {
  const live = runs.filter((run) => !FINAL_STATES.includes(run.job.state));
  if (!live.length || document.hidden) return;
  try {
    for (const run of live) {
      const last = Math.max(0, ...run.rows.keys());
      const [job, rows] = await Promise.all([api(jobUrl(run.job.id)), all(`${jobUrl(run.job.id)}/metrics`, "after_epoch", "next_after_epoch", last)]);
      run.job = job;
      for (const row of rows) run.rows.set(row.epoch, row);
      if (FINAL_STATES.includes(job.state)) run.evaluation = await api(`${jobUrl(job.id)}/evaluation`).catch(() => null);
    }
    render();
    liveIndicator("on", `live: running jobs refreshed every ${REFRESH_MS / 1000} s`);
  } catch (error) {
    liveIndicator("error", describe(error));
  }
}

async function init() {
  showWhoami();
  optionsFromUrl();
  const ids = idsFromUrl();
  $("#compare-hint").hidden = ids.length >= 2;
  form.addEventListener("change", () => {
    writeUrl();
    render();
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  const loaded = await Promise.allSettled(ids.map((id, i) => load(id, i)));
  const errors = [];
  loaded.forEach((result, i) => {
    if (result.status === "fulfilled") runs.push(result.value);
    else errors.push(`${ids[i]}: ${describe(result.reason)}`);
  });
  $("#compare-error").textContent = errors.join("; ");
  labelRuns();
  writeUrl();
  render();
  liveIndicator(runs.some((run) => !FINAL_STATES.includes(run.job.state)) ? "on" : "off", "compare");
  setInterval(refreshRunning, REFRESH_MS);
}

init();
