// One job, live. The page loads the status, every metrics row and every event once, then follows
// GET /jobs/{id}/stream (Server-Sent Events) from the last event it has: metric rows grow the
// charts, other events extend the timeline and refresh the status. The browser's EventSource
// reconnects by itself with Last-Event-ID, so nothing is lost or repeated; the final `end` event
// closes the stream and settles the page. A resume from the page reopens it. A race's parent
// (its log has race commands) shows the race panel, polled while the race is live: the parent's
// own stream ends with stage 1.

import { ApiError, all, api, describe, jobUrl, pageUrl } from "./api.js";
import { LineChart, PALETTE } from "./chart.js";
import { Controls, JOB_ACTIONS } from "./controls.js";
import { renderPanel } from "./evaluation_panel.js";
import { $, h, liveIndicator, replace, toast } from "./dom.js";
import { FINAL_STATES, bytes, clock, duration, f1, g, stateLabel } from "./format.js";
import { canOperate, showWhoami } from "./session.js";
import { RACE_ACTIONS } from "./race_actions.js";
import { RacePanel, raceLink, raceOf } from "./race_panel.js";
import { STAGE_COLOURS, stageMarks } from "./stages.js";
import { parseVisible } from "./text.js";
import { Timeline } from "./timeline.js";

const jobId = document.body.dataset.jobId;
const base = jobUrl(jobId);
const EVENT_KINDS = [
  "created", "state_change", "stage_change", "gate_check", "epoch", "metrics_superseded",
  "command_requested", "command_delivered", "command_applied", "command_refused", "command_expired",
  "command_merged", "decision", "resume_requested", "restored", "redispatched", "forked", "note",
  "pruned", "deleted", "race_command", "race_rung", "race_finished",
];
const STATUS_POLL_MS = 10000; // heartbeat age and ETA between events
const RACE_POLL_MS = 5000; // a live race's board and its candidates' new epochs
// The server thins a long run's metrics to about this many rows (min/max per bucket, stage edges
// kept); rows the stream adds afterwards come whole.
const CHART_POINTS = 400;
const metricsOf = (id) => all(`${jobUrl(id)}/metrics?points=${CHART_POINTS}`, "after_epoch", "next_after_epoch");

const model = {
  job: null,
  fetchedAt: 0,
  rows: new Map(), // epoch -> live metrics row
  events: [],
  seen: new Set(), // event seqs already shown
  lastSeq: 0,
  checkpoints: [],
  source: null,
  children: [],
  me: null, // the signed-in session (role)
};

const charts = {
  loss: new LineChart($("#chart-loss"), { title: "Loss" }),
  f1: new LineChart($("#chart-f1"), { title: "Validation F1, precision, recall", yFormat: (v) => v.toFixed(3) }),
  lr: new LineChart($("#chart-lr"), { title: "Learning rate per param group (log)", log: true }),
  fisher: new LineChart($("#chart-fisher"), { title: "Fisher ratio" }),
};
const timeline = new Timeline($("#timeline"), $("#timeline-all"));
const race = new RacePanel($("#race"), { metrics: metricsOf, trunk: () => sortedRows() });
const controls = new Controls([$("#controls"), $("#race-controls")], $("#control-dialog"), {
  job: () => model.job,
  checkpoints: () => model.checkpoints,
  race: () => race.race,
  mayOperate: () => canOperate(model.me),
  onDone: (action, result) => {
    if (action in RACE_ACTIONS) showRace(result); // a race command answers the race as it is now
    else refreshStatus(); // a resumed job's stream is reopened by the status refresh
  },
}, { ...JOB_ACTIONS, ...RACE_ACTIONS });

// ---- rendering -------------------------------------------------------------------------------

function sortedRows() {
  return [...model.rows.values()].sort((a, b) => a.epoch - b.epoch);
}

function serie(name, rows, pick, color, dash = false) {
  return { name, color, dash, points: rows.map((row) => [row.epoch, pick(row)]) };
}

function renderCharts() {
  const rows = sortedRows();
  const marks = stageMarks(model.events);
  const markers = marks.map((m) => ({ x: m.epoch - 0.5, label: m.label, color: STAGE_COLOURS[m.toStage] }));
  charts.loss.update({
    series: [serie("train loss", rows, (r) => r.train_loss, PALETTE[0]), serie("val loss", rows, (r) => r.val_loss, PALETTE[1])],
    markers,
  });
  const spec = model.job ? model.job.spec : {};
  const hlines = [];
  if (spec.stage2) hlines.push({ y: spec.stage2.gate_f1, label: `stage-2 gate ${g(spec.stage2.gate_f1)}` });
  if (spec.stage3) hlines.push({ y: spec.stage3.gate_f1, label: `stage-3 gate ${g(spec.stage3.gate_f1)}` });
  charts.f1.update({
    series: [
      serie("val F1", rows, (r) => r.val_f1, PALETTE[0]),
      serie("precision", rows, (r) => r.val_precision, PALETTE[2], true),
      serie("recall", rows, (r) => r.val_recall, PALETTE[3], true),
    ],
    markers,
    hlines,
  });
  const groups = [...new Set(rows.flatMap((r) => Object.keys(r.lrs || {})))].sort();
  charts.lr.update({
    series: groups.map((group, i) => serie(group, rows, (r) => (r.lrs || {})[group] ?? null, PALETTE[i % PALETTE.length])),
    markers,
  });
  charts.fisher.update({ series: [serie("Fisher ratio", rows, (r) => r.fisher_ratio, PALETTE[4])], markers });
  replace(
    $("#stage-marks"),
    marks.map((m) => h("li", { "data-stage": String(m.toStage) }, h("b", {}, `epoch ${m.epoch}`), " · ", m.label)),
  );
}

function gateText(gate) {
  if (!gate) return ["no further gate", ""];
  const where = gate.earliest_epoch ? `read from epoch ${gate.earliest_epoch}` : "by hand only";
  const last = gate.last_f1 !== null && gate.last_f1 !== undefined ? `last F1 ${f1(gate.last_f1)} ${gate.passed ? "✓" : "✗"}` : "no F1 yet";
  const deadline = gate.deadline_epoch ? ` · deadline epoch ${gate.deadline_epoch}` : "";
  return [`stage ${gate.stage} at F1 ≥ ${g(gate.threshold)}`, `${where} · ${last} · if it fails: ${gate.policy}${deadline}`];
}

function heartbeatText(job) {
  if (job.heartbeat_age_seconds === null || job.heartbeat_age_seconds === undefined) return "";
  const ageNow = job.heartbeat_age_seconds + (Date.now() - model.fetchedAt) / 1000;
  return `heartbeat ${duration(ageNow)} ago`;
}

// A running job whose heartbeat went stale: a warning, not "running" (GET /jobs/{id} says which).
function staleText(job) {
  if (job.state !== "running" || !(job.heartbeat_stale || job.worker_alive === false)) return "";
  const age = job.heartbeat_age_seconds === null ? "" : ` for ${duration(job.heartbeat_age_seconds)}`;
  return `No heartbeat${age}: its worker may be lost. The job is re-queued when its lease runs out and resumes from its last checkpoint.`;
}

function renderStatus() {
  const job = model.job;
  document.title = `${job.name} · ocec-jobs`;
  $("#job-name").textContent = job.name;
  $("#job-id").textContent = job.id;
  const badge = $("#job-state");
  const stale = staleText(job);
  badge.className = `badge state-${job.state}${stale ? " stale" : ""}`;
  badge.textContent = stale ? "running? no heartbeat" : stateLabel(job.state);
  $("#stale-banner").hidden = !stale;
  $("#stale-banner").textContent = stale;
  // A deleted job (a tombstone): its history stays, its files are gone.
  $("#deleted-banner").hidden = !job.deleted_at;
  $("#deleted-banner").textContent = job.deleted_at
    ? `Deleted ${clock(job.deleted_at)}: its run folder and checkpoints are gone; its history is kept.`
    : "";
  $("#job-stage").className = `pill stage-${job.stage}`;
  $("#job-stage").textContent = `stage ${job.stage}`;
  $("#st-state").textContent = badge.textContent;
  $("#st-state-reason").textContent = job.queue_position ? `${job.state_reason} · queue position ${job.queue_position}` : job.state_reason;
  $("#st-stage").textContent = job.stage_since_epoch > 1 ? `stage ${job.stage} since epoch ${job.stage_since_epoch}` : `stage ${job.stage} from the start`;
  $("#st-stage-reason").textContent = job.stage_reason;
  $("#st-epoch").textContent = `${job.epoch} / ${job.epochs}`;
  $("#st-progress").value = job.progress;
  $("#st-best").textContent = job.best_f1 === null ? "–" : `${f1(job.best_f1)} (epoch ${job.best_epoch})`;
  const latest = job.latest_metrics || {};
  $("#st-latest").textContent = latest.val_f1 !== undefined ? `latest F1 ${f1(latest.val_f1)} · val loss ${g(latest.val_loss, 3)}` : "";
  renderBaseline(job.baseline);
  const [gate, gateSub] = gateText(job.next_gate);
  $("#st-gate").textContent = gate;
  $("#st-gate-sub").textContent = gateSub;
  $("#st-eta").textContent = job.eta_seconds === null ? "–" : duration(job.eta_seconds);
  $("#st-heartbeat").textContent = heartbeatText(job);
  const banner = $("#decision-banner");
  banner.hidden = job.state !== "awaiting_decision";
  if (!banner.hidden) {
    const d = job.pending_decision || {};
    banner.textContent = `Waiting for a decision: ${d.reason || "the gate was not passed"} (F1 ${f1(d.f1)} vs ${g(d.threshold)}). Use “Decide gate…”.`;
  }
  renderLinks(job);
  controls.update();
}

// Model A's val score before epoch 1; a warning while no trained epoch beats it.
function renderBaseline(baseline) {
  const el = $("#st-baseline");
  const known = Boolean(baseline) && baseline.f1 !== null;
  el.textContent = !known ? "" : baseline.beaten === false
    ? `no epoch beats model A (F1 ${f1(baseline.f1)} before epoch 1)`
    : `model A: F1 ${f1(baseline.f1)}`;
  el.classList.toggle("warn", known && baseline.beaten === false);
}

function renderLinks(job) {
  $("#link-json").href = base;
  $("#link-plot").href = `${base}/plot.png`;
  const parent = $("#parent-link");
  parent.hidden = !job.parent_job_id;
  if (job.parent_job_id) {
    const link = $("a", parent);
    link.href = pageUrl(job.parent_job_id);
    link.textContent = job.parent_job_id.slice(0, 8);
  }
  const family = [job.parent_job_id, job.id, ...model.children].filter(Boolean);
  const compare = $("#link-compare");
  compare.hidden = family.length < 2;
  const query = new URLSearchParams();
  for (const id of family) query.append("ids", id);
  compare.href = `/ui/compare?${query}&align=stage2`;
  compare.textContent = job.parent_job_id ? "Compare with parent" : "Compare with forks";
}

function renderSpec(spec) {
  const rows = [];
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix}.${key}` : key, inner);
    } else {
      rows.push(h("tr", {}, h("th", {}, prefix), h("td", { class: "mono" }, value === null ? "–" : String(value))));
    }
  };
  walk("", spec);
  replace($("#spec"), rows);
}

function renderCheckpoints() {
  const list = model.checkpoints;
  const kinds = new Set(list.filter((c) => !c.pruned_at).map((c) => c.kind));
  const links = [];
  for (const [kind, name] of [["best", "best.pt"], ["last", "last.pt"], ["onnx", "best.onnx"]]) {
    if (kinds.has(kind)) links.push(h("a", { href: `${base}/artifacts/${name}`, class: "button", download: name }, `⤓ ${name}`));
  }
  replace($("#artifacts"), links.length ? links : h("span", { class: "muted" }, "no artifacts yet"));
  replace(
    $("#checkpoints"),
    [...list].reverse().map((c) =>
      h("tr", {},
        h("td", {}, c.kind.replace(/_/g, " ")),
        h("td", { class: "num" }, String(c.epoch)),
        h("td", { class: "num" }, String(c.stage)),
        h("td", { class: "num" }, f1(c.val_f1)),
        h("td", { class: "num" }, bytes(c.size_bytes)),
        h("td", {}, c.download ? h("a", { href: c.download, download: "" }, "download") : c.pruned_at ? "pruned" : null),
      ),
    ),
  );
  controls.update();
}

// ---- loading -----------------------------------------------------------------------------------

/** Run fn at most once per `ms`, and once more after the last call (a burst never starves it). */
function throttle(fn, ms) {
  let timer = null;
  let again = false;
  const fire = () => {
    again = false;
    fn();
    timer = setTimeout(() => {
      timer = null;
      if (again) fire();
    }, ms);
  };
  return () => {
    if (timer) again = true;
    else fire();
  };
}

async function refreshStatus() {
  try {
    model.job = await api(base);
    model.fetchedAt = Date.now();
    renderStatus();
    if (!FINAL_STATES.includes(model.job.state)) openStream(); // resumed (here or elsewhere): follow it again
  } catch (error) {
    $("#page-error").textContent = describe(error);
  }
}

async function refreshCheckpoints() {
  try {
    model.checkpoints = await api(`${base}/checkpoints`);
    renderCheckpoints();
  } catch (error) {
    $("#page-error").textContent = describe(error);
  }
}

async function reloadMetrics() {
  const rows = await metricsOf(jobId);
  model.rows = new Map(rows.map((row) => [row.epoch, row]));
  renderCharts();
}

async function loadChildren() {
  const page = await api(`/jobs?parent=${jobId}&limit=20`);
  model.children = page.data.map((job) => job.id);
  if (model.job) renderLinks(model.job);
}

const statusSoon = throttle(refreshStatus, 300);
const checkpointsSoon = throttle(refreshCheckpoints, 1000);
const chartsSoon = throttle(renderCharts, 100);
const raceSoon = throttle(refreshRace, 1000);

function addEvents(events) {
  const fresh = events.filter((e) => !model.seen.has(e.seq));
  if (!fresh.length) return;
  for (const e of fresh) model.seen.add(e.seq);
  model.events.push(...fresh);
  model.events.sort((a, b) => a.seq - b.seq);
  model.lastSeq = Math.max(model.lastSeq, ...fresh.map((e) => e.seq));
  timeline.add(fresh);
  if (fresh.some((e) => ["stage_change", "restored"].includes(e.kind))) chartsSoon();
  if (fresh.some((e) => e.kind === "forked")) loadChildren().catch(() => null);
}

/** A metric message carries the metrics row plus its event seq; the event itself is implied. */
function onMetric(data) {
  const { seq, ...row } = data;
  checkGap(seq);
  model.rows.set(row.epoch, row);
  addEvents([{ seq, kind: "epoch", at: row.recorded_at, actor: "worker", reason: "", epoch: row.epoch, stage: row.stage, attempt: row.attempt, evidence: {} }]);
  chartsSoon();
  statusSoon();
  checkpointsSoon();
}

function checkGap(seq) {
  if (model.lastSeq && seq > model.lastSeq + 1) fillGap(seq);
}

/** Events the stream does not name (a kind newer than this page) are fetched from /events. */
async function fillGap(upTo) {
  const from = model.lastSeq;
  const events = await all(`${base}/events`, "after", "next_after", from).catch(() => []);
  addEvents(events.filter((e) => e.kind !== "epoch" && e.seq < upTo));
}

function onEvent(event) {
  checkGap(event.seq);
  addEvents([event]);
  if (event.kind === "metrics_superseded") reloadMetrics().catch(() => null);
  if (event.kind.startsWith("race_")) raceSoon();
  statusSoon();
  if (["command_applied", "state_change", "restored", "stage_change", "pruned", "deleted"].includes(event.kind)) checkpointsSoon();
}

function closeStream(state, title) {
  if (model.source) model.source.close();
  model.source = null;
  liveIndicator(state, title);
}

function openStream() {
  if (model.source) return;
  const source = new EventSource(`${base}/stream?after=${model.lastSeq}`);
  model.source = source;
  source.addEventListener("open", () => liveIndicator("on", "live: following the job's event stream"));
  source.addEventListener("metric", (message) => onMetric(parseVisible(message.data)));
  for (const kind of EVENT_KINDS) source.addEventListener(kind, (message) => onEvent(parseVisible(message.data)));
  source.addEventListener("end", (message) => {
    const end = parseVisible(message.data);
    closeStream("off", `finished: ${end.state}`);
    document.body.dataset.streamEnded = end.state;
    refreshStatus();
    refreshCheckpoints();
    loadEvaluation().catch(() => null);
    toast(`Job ${stateLabel(end.state)}: ${end.state_reason}`, end.state === "succeeded" ? "ok" : "warn");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // refused outright (401, 404, 5xx): check the job (a 401 goes to sign-in), then try again
      closeStream("error", "stream refused; retrying");
      setTimeout(() => refreshStatus().then(() => openStream()), 3000);
    } else {
      liveIndicator("error", "stream interrupted; reconnecting with Last-Event-ID");
    }
  });
}

async function showRace(status) {
  await race.show(status);
  controls.update();
}

async function refreshRace() {
  try {
    await showRace(await api(`${base}/race`));
  } catch (error) {
    $("#page-error").textContent = describe(error);
  }
}

/** A candidate's page links to its race; any other fork's parent answers no race. */
async function loadRaceLink(parentId) {
  const parentRace = await raceOf(parentId);
  if (parentRace) raceLink($("#race-link"), parentRace, jobId);
}

/** The job's own evaluation (written by its worker when it ends): shown once there is a report. */
async function loadEvaluation() {
  const evaluation = await api(`${base}/evaluation`);
  if (!Object.keys(evaluation.reports).length) return;
  $("#evaluation").hidden = false;
  const worstUrl = (tag, i) => `${base}/evaluation/${encodeURIComponent(tag)}/worst/${i}.png`;
  renderPanel($("#evaluation-panel"), { summary: evaluation.summary, reports: evaluation.reports, worstUrl });
}

async function init() {
  showWhoami().then((me) => {
    model.me = me;
    controls.update();
  });
  try {
    // events before metrics: a row recorded in between is then in the metrics (the stream starts
    // after the last event read), never in neither
    const [job, events] = await Promise.all([api(base), all(`${base}/events`, "after", "next_after")]);
    const rows = await metricsOf(jobId);
    model.job = job;
    model.fetchedAt = Date.now();
    model.rows = new Map(rows.map((row) => [row.epoch, row]));
    addEvents(events);
  } catch (error) {
    const missing = error instanceof ApiError && error.status === 404;
    $("#page-error").textContent = missing ? `No job with id ${jobId}.` : describe(error);
    $("#job-name").textContent = missing ? "Job not found" : "Error";
    return;
  }
  renderStatus();
  renderSpec(model.job.spec);
  renderCharts();
  refreshCheckpoints();
  loadChildren().catch(() => null);
  if (model.events.some((e) => e.kind === "race_command")) refreshRace();
  if (model.job.parent_job_id) loadRaceLink(model.job.parent_job_id).catch(() => null);
  loadEvaluation().catch((error) => { $("#page-error").textContent = describe(error); });
  if (FINAL_STATES.includes(model.job.state)) {
    // nothing more will come unless someone resumes it: the status poll notices that
    liveIndicator("off", `finished: ${model.job.state}`);
    document.body.dataset.streamEnded = model.job.state;
  } else {
    openStream();
  }
  setInterval(() => {
    if (model.job && model.source && !document.hidden) $("#st-heartbeat").textContent = heartbeatText(model.job);
  }, 1000);
  setInterval(() => {
    if (!document.hidden) refreshStatus();
  }, STATUS_POLL_MS);
  setInterval(() => {
    if (race.live && !document.hidden) refreshRace();
  }, RACE_POLL_MS);
}

init();
