// The race panel of a race's parent job (docs/race.md): state, winner and why, the budget, the
// leaderboard, each candidate's val F1 per epoch with the rungs marked, and every rung decision with
// its numbers. A cut candidate's line ends at the rung that cut it (the numbers the race judged; its
// own job page has any epoch it trained past it), so the chart is the picture of successive halving.
// The operator's commands are actions of the page's controls (race_actions.js).

import { api, jobUrl, pageUrl } from "./api.js";
import { LineChart, PALETTE } from "./chart.js";
import { $, h, replace } from "./dom.js";
import { FINAL_STATES, f1, g, percent, stateLabel } from "./format.js";

export const LIVE_RACE = ["stage1", "racing"];
const TRUNK = "#94a3b8"; // the shared stage 1

/** The rung that cut ``name`` (a decision's epoch), or null (not cut by a rung or the budget). */
function cutAt(race, name) {
  const decision = race.decisions.find((d) => (d.cut || []).includes(name));
  return decision ? decision.rung : null;
}

function planText(entry) {
  if (entry.full_finetune) return "full fine-tune from model A";
  const parts = Object.entries(entry.stage2 || {}).map(([k, v]) => `${k} ${typeof v === "number" ? g(v) : v}`);
  return parts.length ? `stage 2: ${parts.join(", ")}` : "stage 2 as the job's";
}

function winnerText(race) {
  if (race.winner) return [`Winner: ${race.winner}`, race.reason];
  if (LIVE_RACE.includes(race.state)) {
    const next = race.next_rung === null ? "no rung left: the best finished candidate wins" : `next rung at epoch ${race.next_rung}`;
    return [race.state === "stage1" ? "Stage 1 trains once for every candidate" : "Racing", `${next}${race.reason ? ` · ${race.reason}` : ""}`];
  }
  return [`No winner (${race.state})`, race.reason];
}

function budgetView(budget) {
  const used = budget.used_sample_epochs;
  const total = budget.total_sample_epochs;
  if (total === null || total === undefined) return h("p", { class: "muted", id: "race-budget-text" }, `${used} sample-epochs used (no budget)`);
  return h("div", { class: "race-budget" },
    h("span", { class: "k" }, "Budget"),
    h("progress", { id: "race-budget", max: String(total), value: String(Math.min(used, total)) }),
    h("span", { id: "race-budget-text" }, `${used} of ${total} sample-epochs (${percent(used / total)})`));
}

function boardRow(entry) {
  const job = entry.job_id
    ? h("a", { href: pageUrl(entry.job_id), class: "mono" }, entry.job_id.slice(0, 8))
    : h("span", { class: "muted" }, "after stage 1");
  const best = entry.best_f1 === null ? "–" : `${f1(entry.best_f1)} (epoch ${entry.best_epoch})`;
  return h("tr", { "data-candidate": entry.candidate, "data-status": entry.status },
    h("td", {}, h("b", {}, entry.candidate), entry.protected ? h("span", { class: "pill", title: "extended: survives its next rung" }, "extended") : null,
      h("br"), h("small", { class: "muted" }, planText(entry))),
    h("td", {}, h("span", { class: `badge race-${entry.status}`, title: entry.state ? `job ${stateLabel(entry.state)}` : "" }, entry.status)),
    h("td", {}, job),
    h("td", { class: "num" }, entry.epoch === null ? "–" : String(entry.epoch)),
    h("td", { class: "num" }, f1(entry.val_f1)),
    h("td", { class: "num" }, best),
    h("td", { class: "num" }, f1(entry.retention_f1)),
    h("td", { class: "why", title: entry.reason }, h("span", {}, entry.reason)));
}

function decisionView(decision) {
  const kept = new Set(decision.kept);
  const head = decision.budget
    ? `Budget spent at epoch ${decision.rung} (${decision.sample_epochs} sample-epochs): only the leader goes on`
    : `Rung epoch ${decision.rung}`;
  const rows = (decision.standings || []).map((s, i) =>
    h("tr", { "data-candidate": s.candidate },
      h("td", { class: "num" }, String(i + 1)),
      h("td", {}, s.candidate, s.protected ? h("small", { class: "muted" }, " · extended") : null),
      h("td", { class: "num" }, f1(s.val_f1), s.epoch != null && s.epoch !== decision.rung ? h("small", { class: "muted" }, ` (epoch ${s.epoch})`) : null),
      h("td", { class: "num" }, g(s.val_loss, 3)),
      h("td", { class: kept.has(s.candidate) ? "good" : "bad" }, kept.has(s.candidate) ? "kept" : "cut")));
  return h("li", { "data-rung": String(decision.rung) },
    h("b", {}, head), " · ", h("span", {}, `kept ${decision.kept.join(", ") || "none"}; cut ${decision.cut.join(", ") || "none"}`),
    h("table", { class: "compact" },
      h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Candidate"), h("th", { class: "num", title: "the best epoch up to the rung: the model it would keep" }, `best val F1 by ${decision.rung}`),
        h("th", { class: "num" }, "val loss"), h("th", {}, "Decision"))),
      h("tbody", {}, rows)));
}

export class RacePanel {
  /**
   * @param root the panel's section (job.html, #race)
   * @param options {metrics(jobId) → rows, trunk() → the parent's own rows (stage 1)}
   */
  constructor(root, { metrics, trunk }) {
    this.root = root;
    this.metrics = metrics;
    this.trunk = trunk;
    this.race = null;
    this.rows = new Map(); // child job id -> its metrics rows
    this.final = new Set(); // child job ids whose rows will not change
    this.chart = new LineChart($("#chart-race", root), { title: "Validation F1 per candidate; rungs marked", yFormat: (v) => v.toFixed(3) });
  }

  get live() {
    return Boolean(this.race) && LIVE_RACE.includes(this.race.state);
  }

  /** Show ``race`` (GET /jobs/{id}/race, or a command's answer); fetch its candidates' new rows. */
  async show(race) {
    this.race = race;
    this.render();
    const ended = (e) => FINAL_STATES.includes(e.state);
    const stale = race.leaderboard.filter((e) => e.job_id && !(this.final.has(e.job_id) && ended(e)));
    await Promise.all(stale.map(async (entry) => {
      this.rows.set(entry.job_id, await this.metrics(entry.job_id));
      if (ended(entry)) this.final.add(entry.job_id);
      else this.final.delete(entry.job_id); // resumed (an extended candidate): its rows grow again
    }));
    this.renderChart();
  }

  render() {
    const race = this.race;
    this.root.hidden = false;
    this.root.dataset.state = race.state;
    const badge = $("#race-state", this.root);
    badge.className = `badge race-${race.state}`;
    badge.textContent = race.state;
    const [headline, why] = winnerText(race);
    $("#race-winner", this.root).textContent = headline;
    $("#race-reason", this.root).textContent = why;
    replace($("#race-budget-box", this.root), budgetView(race.budget));
    replace($("#race-board", this.root), race.leaderboard.map(boardRow));
    replace($("#race-decisions", this.root), race.decisions.map(decisionView));
    this.renderChart();
  }

  /** One line per candidate (a fork's starts where stage 1 ended), the rungs as vertical lines. */
  renderChart() {
    const race = this.race;
    const u = race.stage1_epochs;
    const trunk = this.trunk().filter((r) => r.epoch <= u);
    const names = race.leaderboard.map((e) => e.candidate).sort();
    const series = [{ name: "stage 1 (shared)", color: TRUNK, points: trunk.map((r) => [r.epoch, r.val_f1]) }];
    for (const entry of race.leaderboard) {
      const own = this.rows.get(entry.job_id) || [];
      const start = entry.full_finetune ? [] : trunk.slice(-1);
      const end = entry.status === "cut" ? cutAt(race, entry.candidate) : null;
      const rows = [...start, ...own].filter((r) => end === null || r.epoch <= end);
      series.push({ name: entry.candidate, color: PALETTE[names.indexOf(entry.candidate) % PALETTE.length], dash: entry.status === "cut", points: rows.map((r) => [r.epoch, r.val_f1]) });
    }
    const markers = [{ x: u + 0.5, label: `stage 2: the candidates fork after epoch ${u}`, short: "forks", color: TRUNK }];
    for (const rung of race.rungs) {
      const decision = race.decisions.find((d) => d.rung === rung && !d.budget);
      const what = decision ? `cut ${decision.cut.join(", ") || "none"}` : rung === race.next_rung ? "next" : "not reached";
      const short = decision ? `rung ${rung} · cut ${decision.cut.length}` : `rung ${rung}`;
      markers.push({ x: rung, label: `rung ${rung}: ${what}`, short, color: "#0f172a" });
    }
    for (const decision of race.decisions.filter((d) => d.budget)) {
      markers.push({ x: decision.rung, label: `budget spent at epoch ${decision.rung}: cut ${decision.cut.join(", ")}`, short: "budget", color: "#d97706" });
    }
    this.chart.update({ series, markers });
  }
}

/** On a candidate's own page: which race it is in, with a link to the race panel. */
export function raceLink(el, race, jobId) {
  const entry = race.leaderboard.find((e) => e.job_id === jobId);
  el.hidden = !entry;
  if (!entry) return;
  replace(el, " · candidate ", h("b", {}, entry.candidate), ` (${entry.status}) of `,
    h("a", { href: `${pageUrl(race.job_id)}#race`, id: "race-link-a" }, `race ${race.job_id.slice(0, 8)}`));
}

/** Whether ``parentId`` runs a race (its log has race commands), without a refused request. */
export async function raceOf(parentId) {
  const page = await api(`${jobUrl(parentId)}/events?kind=race_command&limit=1`);
  return page.data.length ? api(`${jobUrl(parentId)}/race`) : null;
}
