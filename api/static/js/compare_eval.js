// The compare view's evaluation columns (from each job's GET /jobs/{id}/evaluation) and the diff of
// the jobs' settings (every spec field, nested ones dotted, whose values are not all the same).

import { h, replace } from "./dom.js";
import { f1 } from "./format.js";

/** A spec as dotted keys: {stage2: {lr: 1}} -> {"stage2.lr": 1}; lists stay values. */
export function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix) {
    out[prefix] = value;
  }
  return out;
}

const shown = (value) => (value === undefined ? "–" : value === null ? "null" : typeof value === "object" ? JSON.stringify(value) : String(value));

/** [{key, values: [per job]}] of the keys whose shown values differ between the jobs. */
export function settingsDiff(specs) {
  const flat = specs.map((spec) => flatten(spec || {}));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  return keys
    .map((key) => ({ key, values: flat.map((f) => shown(f[key])) }))
    .filter(({ values }) => new Set(values).size > 1);
}

function rowOf(summary, tag) {
  const table = summary && Array.isArray(summary.table) ? summary.table : [];
  return table.find((row) => row.tag === tag) || null;
}

function signed(value) {
  return value === null || value === undefined ? "–" : `${value >= 0 ? "+" : ""}${value.toFixed(3)}`;
}

/** runs: [{job, label, evaluation: {summary} | null}] */
export function renderEvaluationTable(body, note, runs) {
  let missing = 0;
  replace(body, runs.map((run) => {
    const summary = run.evaluation && run.evaluation.summary;
    if (!summary) missing += 1;
    const before = rowOf(summary, "before_B");
    const after = rowOf(summary, "after_B");
    const gain = before && after && typeof before.f1 === "number" && typeof after.f1 === "number" ? after.f1 - before.f1 : null;
    return h("tr", { "data-job-id": run.job.id },
      h("td", {}, run.label),
      h("td", { class: "num" }, f1(before && before.f1)),
      h("td", { class: "num" }, f1(after && after.f1)),
      h("td", { class: ["num", gain !== null && (gain >= 0 ? "good" : "bad")] }, signed(gain)),
      h("td", { class: "num" }, f1(after && after.roc_auc)),
      h("td", { class: "num" }, summary && typeof summary.threshold === "number" ? summary.threshold.toFixed(2) : "–"),
      h("td", { class: ["num", summary && summary.forgetting > 0 && "bad"] }, signed(summary ? summary.forgetting ?? null : null)));
  }));
  note.textContent = missing ? `${missing} job(s) have no evaluation yet (written when a job ends).` : "";
}

export function renderSettingsDiff(head, body, note, runs) {
  replace(head, h("th", {}, "Setting"), runs.map((run) => h("th", {}, run.label)));
  const diff = settingsDiff(runs.map((run) => run.job.spec));
  replace(body, diff.map(({ key, values }) => h("tr", { "data-setting": key }, h("td", { class: "mono" }, key), values.map((v) => h("td", { class: "mono" }, v)))));
  note.textContent = runs.length < 2 ? "" : diff.length ? "" : "The jobs' settings are the same.";
}
