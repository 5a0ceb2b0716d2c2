// Stage boundaries from a job's events, labelled with their reason — the same marks plot.png draws
// (api/routes/plots.py: stage_marks, mark_label).

import { f1 } from "./format.js";

export const STAGE_COLOURS = { 1: "#64748b", 2: "#d97706", 3: "#7c3aed" };

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function isBoundary(event) {
  return (
    event.kind === "stage_change" &&
    (event.evidence || {}).trigger !== "start" &&
    event.from_stage !== null && event.from_stage !== undefined &&
    event.to_stage !== null && event.to_stage !== undefined &&
    event.epoch !== null && event.epoch !== undefined
  );
}

/** "stage 2 — gate: F1 0.812 ≥ 0.80", "stage 2 — forced by alice: …", "stage 2 — resume: …" */
export function markLabel(event) {
  const evidence = event.evidence || {};
  const trigger = String(evidence.trigger || "");
  const score = num(evidence.val_f1);
  const gate = num(evidence.gate_f1);
  let why;
  if (trigger === "gate" && score !== null && gate !== null) why = `gate: F1 ${f1(score)} ≥ ${gate.toFixed(2)}`;
  else if (trigger === "policy" && score !== null && gate !== null) why = `policy proceed: F1 ${f1(score)} < ${gate.toFixed(2)}`;
  else if (trigger === "forced") why = event.reason.startsWith("forced by") ? event.reason : `forced by ${event.actor}: ${event.reason}`;
  else why = event.reason ? `${trigger || "change"}: ${event.reason}` : trigger || "change";
  return `stage ${event.to_stage} — ${why}`;
}

/**
 * Boundaries still on the job's timeline, one per epoch (the latest wins): [{epoch, toStage, label}].
 * `epoch` is the first epoch of the new stage. A restore that went back before a boundary into a
 * lower stage drops it (that timeline was abandoned).
 */
export function stageMarks(events) {
  let marks = new Map();
  for (const event of events) {
    if (event.kind === "restored") {
      const stage = Number((event.evidence || {}).stage || 0);
      const epoch = Number((event.evidence || {}).epoch || 0);
      marks = new Map([...marks].filter(([u, m]) => !(u > epoch && m.toStage > stage)));
    } else if (isBoundary(event)) {
      marks.set(event.epoch, { epoch: event.epoch, toStage: event.to_stage, label: markLabel(event) });
    }
  }
  return [...marks.keys()].sort((a, b) => a - b).map((epoch) => marks.get(epoch));
}

/** The first epoch trained in stage 2 or later (from the metric rows), or null. */
export function stage2Entry(rows) {
  const first = rows.find((row) => row.stage >= 2);
  return first ? first.epoch : null;
}

/** Per-stage summary: best F1 in stage 1 and in stage 2+, and the effect of unfreezing. */
export function stageSummary(rows) {
  const entry = stage2Entry(rows);
  const best = (list) => list.reduce((acc, r) => (r.val_f1 !== null && (acc === null || r.val_f1 > acc) ? r.val_f1 : acc), null);
  const before = rows.filter((r) => r.stage < 2);
  const after = rows.filter((r) => r.stage >= 2);
  let effect = null;
  const lastBefore = [...before].reverse().find((r) => r.val_f1 !== null);
  const firstAfter = after.slice(0, 3).filter((r) => r.val_f1 !== null);
  if (lastBefore && firstAfter.length) {
    effect = firstAfter.reduce((acc, r) => acc + r.val_f1, 0) / firstAfter.length - lastBefore.val_f1;
  }
  return { entry, bestStage1: best(before), bestStage2: best(after), effect };
}
