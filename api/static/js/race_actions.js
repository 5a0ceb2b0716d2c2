// The race's operator commands (docs/race.md, "By hand"), as actions of the job page's controls:
// the same dialog says what will happen, asks for a reason and shows the API's problem if it refuses.
// Each send carries a fresh Idempotency-Key. The statuses a command accepts mirror
// jobstore/repo/races.py (CAN_WIN, EXTENDABLE, IN_PLAY; tests/api/dashboard/test_js_mirrors.py fails on drift).

import { jobUrl, newKey, post } from "./api.js";
import { number, select, text } from "./controls.js";
import { LIVE_RACE } from "./race_panel.js";

const CAN_WIN = ["running", "waiting", "finished"];
const EXTENDABLE = ["running", "waiting", "cut"];
const IN_PLAY = ["running", "waiting"];

const names = (race, statuses) => (race ? race.leaderboard.filter((e) => statuses.includes(e.status)).map((e) => e.candidate) : []);
const list = (items) => (items.length ? items.join(", ") : "none");
const live = (ctx) => Boolean(ctx.race) && LIVE_RACE.includes(ctx.race.state);
const ended = (job, ctx) => (ctx.race ? `the race is ${ctx.race.state}: it takes no more commands` : "not a race");
const command = (job, verb, body) => post(`${jobUrl(job.id)}/race/${verb}`, body, { "Idempotency-Key": newKey() });

function candidateField(options) {
  return select("candidate", "Candidate", options.map((name) => ({ value: name, text: name })));
}

function choose(statuses) {
  return {
    allowed: (job, ctx) => live(ctx) && names(ctx.race, statuses).length > 0,
    why: (job, ctx) => (live(ctx) ? "no candidate it applies to" : ended(job, ctx)),
    fields: (job, ctx) => [candidateField(names(ctx.race, statuses))],
  };
}

function nextRung(race) {
  return race.next_rung === null ? "" : ` (epoch ${race.next_rung})`;
}

export const RACE_ACTIONS = {
  "race-stop": {
    title: "Stop the race",
    confirm: "Stop race",
    danger: true,
    allowed: (job, ctx) => live(ctx),
    why: ended,
    fields: () => [],
    summary(job, values, ctx) {
      const finished = names(ctx.race, ["finished"]);
      const stage1 = ctx.race.state === "stage1" ? ", and stage 1 with them" : "";
      const end = finished.length
        ? `The best finished candidate (of ${list(finished)}) still wins.`
        : "No candidate has finished: the race ends as stopped, without a winner.";
      return `Every candidate still in play (${list(names(ctx.race, IN_PLAY))}) is cancelled${stage1}. ${end}`;
    },
    send: (job, values, reason) => command(job, "stop", { reason }),
    done: () => "Race stopped: its candidates are being cancelled.",
  },

  "race-promote": {
    title: "Promote a candidate",
    confirm: "Promote",
    ...choose(CAN_WIN),
    summary(job, values, ctx) {
      const others = names(ctx.race, CAN_WIN).filter((name) => name !== values.candidate);
      const cut = others.length === 1 ? "is cut (its job cancelled)" : "are cut (their jobs cancelled)";
      return `${values.candidate} becomes the only candidate: ${others.length ? `${list(others)} ${cut}` : "no other is left to cut"}; it wins when its job finishes.`;
    },
    send: (job, values, reason) => command(job, "promote", { candidate: values.candidate, reason }),
    done: (job, result, values) => `${values.candidate} promoted: the others are cut.`,
  },

  "race-extend": {
    title: "Extend a candidate",
    confirm: "Extend",
    ...choose(EXTENDABLE),
    summary(job, values, ctx) {
      const entry = ctx.race.leaderboard.find((e) => e.candidate === values.candidate) || {};
      const resumed = entry.status === "cut" ? " Its job was cut: it is resumed from its last checkpoint." : "";
      return `${values.candidate} survives the next rung${nextRung(ctx.race)} whatever its rank.${resumed}`;
    },
    send: (job, values, reason) => command(job, "extend", { candidate: values.candidate, reason }),
    done: (job, result, values) => `${values.candidate} extended.`,
  },

  "race-add": {
    title: "Add a candidate",
    confirm: "Add",
    allowed: (job, ctx) => live(ctx),
    why: ended,
    fields: () => [
      text("name", "Name", ""),
      select("plan", "Plan", [{ value: "stage2", text: "a stage-2 recipe from stage 1" }, { value: "full", text: "a full fine-tune from model A" }]),
      number("stage2.lr_factor", "Stage-2 lr factor", { placeholder: "the job's", hint: "× the base lr" }),
      number("stage2.unfreeze_ratio", "Stage 2 unfreezes (fraction)", { placeholder: "the job's" }),
    ],
    visible: (values) => ({ "stage2.lr_factor": values.plan !== "full", "stage2.unfreeze_ratio": values.plan !== "full" }),
    summary(job, values, ctx) {
      const name = values.name || "the new candidate";
      const when = ctx.race.state === "racing" ? "now" : "when stage 1 succeeds";
      const start = values.plan === "full"
        ? `${name} starts now: a full fine-tune from model A`
        : `${name} is forked from stage 1's last checkpoint ${when}, entering stage 2 whatever the gate says`;
      return `${start}; it joins the race at the next rung${nextRung(ctx.race)}.`;
    },
    send(job, values, reason) {
      const body = { name: values.name, reason };
      if (values.plan === "full") body.full_finetune = true;
      else body.stage2 = { on_gate_fail: "proceed", ...(values.stage2 || {}) };
      return command(job, "candidates", body);
    },
    done: (job, result, values) => `${values.name} added to the race.`,
  },
};
