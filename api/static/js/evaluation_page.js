// One evaluation: its state and progress while a worker runs it (polled), then the report in the
// shared evaluation panel (curves, threshold slider, confusion matrix, misclassified crops).

import { ApiError, api, describe } from "./api.js";
import { $, liveIndicator } from "./dom.js";
import { stateLabel } from "./format.js";
import { renderPanel } from "./evaluation_panel.js";
import { showWhoami } from "./session.js";

const POLL_MS = 1500;
const id = document.body.dataset.evaluationId;
const base = `/evaluations/${encodeURIComponent(id)}`;

function links() {
  $("#link-json").href = base;
  $("#link-sheet").href = `${base}/worst.png`;
  $("#link-roc").href = `${base}/roc.png`;
  $("#link-pr").href = `${base}/pr.png`;
}

function renderHead(e) {
  $("#evaluation-id").textContent = e.id;
  $("#evaluation-name").textContent = e.name || "Evaluation";
  const badge = $("#evaluation-state");
  badge.textContent = stateLabel(e.state);
  badge.className = `badge state-${e.state}`;
  document.body.dataset.state = e.state;
  const threshold = e.threshold.target === null ? e.threshold.rule : `${e.threshold.rule} ${e.threshold.target}`;
  $("#evaluation-what").textContent = `model ${e.model_path} (${e.model_root} root) · data ${e.data_path} · split ${e.split} · threshold ${threshold}`;
  $("#evaluation-reason").hidden = !e.state_reason;
  $("#evaluation-reason").textContent = e.state_reason;
  const bar = $("#evaluation-progress");
  bar.hidden = e.state !== "running" || !e.progress.total;
  if (e.progress.total) bar.value = e.progress.done / e.progress.total;
}

async function poll() {
  let e;
  try {
    e = await api(base);
  } catch (error) {
    const missing = error instanceof ApiError && error.status === 404;
    $("#page-error").textContent = missing ? `No evaluation with id ${id}.` : describe(error);
    liveIndicator("error", "could not read the evaluation");
    if (!missing) setTimeout(poll, POLL_MS * 4);
    return;
  }
  renderHead(e);
  if (e.state === "queued" || e.state === "running") {
    liveIndicator("on", "waiting for the worker");
    setTimeout(poll, POLL_MS);
    return;
  }
  liveIndicator("off", `finished: ${e.state}`);
  if (e.report) {
    $("#evaluation").hidden = false;
    renderPanel($("#evaluation-panel"), { reports: { [e.name || "evaluation"]: e.report }, worstUrl: (_tag, i) => `${base}/worst/${i}.png` });
  }
}

showWhoami();
links();
poll();
