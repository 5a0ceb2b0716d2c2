// Operator controls of the job page. Every action opens one dialog that states exactly what will
// happen (computed from the job's status, spec and checkpoints), asks for a reason, and shows the
// API's problem (409, 422, ...) if the server refuses. Buttons are enabled only in the states where
// the API allows the action (docs/api.md, Control). A bar marked ``data-operator-only`` (the race's
// commands) is hidden from a viewer instead.

import { ApiError, describe, jobUrl, newKey, pageUrl, post } from "./api.js";
import { $, $$, h, toast } from "./dom.js";
import { f1, g, percent, stateLabel } from "./format.js";
import { clearErrors, formBody, formError, showFieldErrors } from "./forms.js";

const RESUMABLE = ["paused", "awaiting_decision", "interrupted", "failed", "cancelled"];
const CANCELLABLE = ["queued", "running", "paused", "awaiting_decision", "interrupted"];

// ---- what the spec says about a stage ---------------------------------------------------------

function gateOf(spec, stage) {
  if (stage === 3) return spec.stage3 || { unfreeze_ratio: 1.0, lr_factor: 0.025, lr: null, gate_f1: 0.85 };
  return spec.stage2 || { unfreeze_ratio: 0.5, lr_factor: 0.05, lr: null, gate_f1: 0.8 };
}

export function stageLr(spec, stage, baseLr = spec.lr) {
  const gate = gateOf(spec, stage);
  return gate.lr ?? baseLr * gate.lr_factor;
}

function unfreezeText(spec, stage, baseLr) {
  const gate = gateOf(spec, stage);
  const share = gate.unfreeze_ratio >= 1 ? "the whole backbone" : `the last ${percent(gate.unfreeze_ratio)} of the backbone`;
  return `${share} unfreezes at lr ${g(stageLr(spec, stage, baseLr))}`;
}

// ---- checkpoints a resume or fork can start from (mirrors jobstore's selector rules) ---------

export function pickCheckpoint(checkpoints, selector) {
  const usable = checkpoints.filter((c) => c.kind !== "onnx");
  const latest = (list) => [...list].sort((a, b) => b.epoch - a.epoch || Date.parse(b.created_at) - Date.parse(a.created_at))[0] || null;
  if (selector === "last") return latest(usable);
  if (selector === "best") {
    return [...usable.filter((c) => c.kind === "best")].sort((a, b) => (b.val_f1 ?? -1) - (a.val_f1 ?? -1) || b.epoch - a.epoch)[0] || null;
  }
  const [name, number] = selector.split(":");
  if (name === "stage") return latest(usable.filter((c) => c.kind === "stage_entry" && c.stage === Number(number)));
  return latest(usable.filter((c) => c.epoch === Number(number)));
}

function checkpointText(record, selector) {
  if (!record) return `the ${selector} checkpoint (none recorded yet: the server will refuse)`;
  const score = record.val_f1 !== null && record.val_f1 !== undefined ? `, F1 ${f1(record.val_f1)}` : "";
  const what = selector.startsWith("stage:") ? `the stage-${record.stage} entry checkpoint` : `the ${selector} checkpoint`;
  return `${what} (after epoch ${record.epoch}, stage ${record.stage}${score})`;
}

function fromOptions(checkpoints, fallback) {
  const options = [
    { value: "last", text: "last checkpoint" },
    { value: "best", text: "best checkpoint" },
  ];
  const stages = [...new Set(checkpoints.filter((c) => c.kind === "stage_entry").map((c) => c.stage))].sort();
  for (const stage of stages) options.push({ value: `stage:${stage}`, text: `stage ${stage} entry` });
  return options.map((o) => ({ ...o, selected: o.value === fallback }));
}

// ---- form fields ----------------------------------------------------------------------------

export function field(name, label, input, hint) {
  return h("label", { class: "field", "data-field": name }, h("span", {}, label), input, hint ? h("small", { class: "hint" }, hint) : null, h("small", { class: "field-error" }));
}

export function select(name, label, options) {
  const input = h("select", { name }, options.map((o) => h("option", { value: o.value, selected: o.selected || false }, o.text)));
  return field(name, label, input);
}

export function number(name, label, { placeholder = "", type = "float", value = "", hint } = {}) {
  const input = h("input", { name, inputmode: "decimal", placeholder, value: String(value), "data-type": type });
  return field(name, label, input, hint);
}

export function text(name, label, value = "") {
  return field(name, label, h("input", { name, value, maxlength: "200" }));
}

// ---- the actions ------------------------------------------------------------------------------

export const JOB_ACTIONS = {
  stage: {
    title: "Force the next stage",
    confirm: "Force stage",
    allowed: (job) => ["queued", "running"].includes(job.state) && job.stage < 3,
    why: (job) => (job.stage >= 3 ? "already in the last stage" : `a ${stateLabel(job.state)} job: use Resume with a stage`),
    fields: (job) => [
      select("stage", "Stage", [2, 3].filter((n) => n > job.stage).map((n) => ({ value: String(n), text: `stage ${n}` }))),
    ],
    summary(job, values) {
      const stage = Number(values.stage || job.stage + 1);
      const when = job.state === "queued"
        ? `Stage ${stage} starts when a worker starts this queued job (before epoch ${job.epoch + 1})`
        : `Stage ${stage} starts at the first epoch boundary after you confirm (after epoch ${job.epoch + 1}, the one running now, unless it ends first)`;
      return `${when}; ${unfreezeText(job.spec, stage)}. The stage-${stage} gate is skipped.`;
    },
    send: (job, values, reason) => post(`${jobUrl(job.id)}/stage`, { stage: Number(values.stage), reason }, { "Idempotency-Key": newKey() }),
    done: (job, result, values) => `Stage ${values.stage} requested: it applies at the first epoch boundary from now (command ${result.command ? result.command.id.slice(0, 8) : "stored"}).`,
  },

  decide: {
    title: "Decide the failed gate",
    confirm: "Apply decision",
    allowed: (job) => job.state === "awaiting_decision",
    why: () => "only a job waiting at a gate (awaiting decision)",
    fields: (job) => [
      select("action", "Decision", [
        { value: "proceed", text: `proceed to stage ${(job.next_gate || {}).stage || job.stage + 1} anyway` },
        { value: "extend", text: "extend the current stage" },
        { value: "retry", text: "retry the current stage with another lr" },
        { value: "stop", text: "stop here (finish with the best model)" },
      ]),
      number("epochs", "Extra epochs (extend)", { type: "int", value: 5, hint: "the gate is read again after them" }),
      number("lr", "New lr (retry)", { placeholder: g(job.spec.lr / 2) }),
    ],
    visible: (values) => ({ epochs: values.action === "extend", lr: values.action === "retry" }),
    summary(job, values) {
      const pending = job.pending_decision || {};
      const target = pending.stage || (job.next_gate || {}).stage || job.stage + 1;
      const gateEpoch = pending.epoch || job.epoch + 1;
      const why = pending.f1 !== undefined && pending.f1 !== null ? ` (stage-${target - 1} F1 ${f1(pending.f1)} < gate ${g(pending.threshold)})` : "";
      switch (values.action) {
        case "extend": {
          const n = Number(values.epochs) || 0;
          return `Stage ${target - 1} trains ${n} more epochs from the last checkpoint (epoch ${job.epoch}); the stage-${target} gate moves to epoch ${gateEpoch + n} and is read again with the job's policy; the epoch budget grows from ${job.epochs} to ${job.epochs + n}.`;
        }
        case "retry": {
          const which = target - 1 === 1 ? "base lr" : `stage-${target - 1} lr`;
          return `Stage ${target - 1} restarts from its entry checkpoint with ${which} ${g(Number(values.lr))}; the epochs trained since its entry are marked superseded.`;
        }
        case "stop":
          return `The job ends at its last checkpoint (epoch ${job.epoch}) as succeeded, without stage ${target}${why}: a worker exports the best model (F1 ${f1(job.best_f1)}) as .pt and .onnx.`;
        default:
          return `The job resumes from its last checkpoint (epoch ${job.epoch}) and enters stage ${target} at epoch ${gateEpoch}${why}: ${unfreezeText(job.spec, target)}.`;
      }
    },
    send(job, values, reason) {
      const body = { action: values.action, reason };
      if (values.action === "extend") body.epochs = values.epochs;
      if (values.action === "retry") body.lr = values.lr;
      return post(`${jobUrl(job.id)}/decide`, body);
    },
    done: (job, result, values) => `Decision "${values.action}" recorded.`,
  },

  pause: {
    title: "Pause the job",
    confirm: "Pause",
    allowed: (job) => job.state === "running",
    why: (job) => `only a running job can be paused (this one is ${stateLabel(job.state)})`,
    fields: () => [],
    summary: (job) =>
      `The worker checkpoints at the end of the batch it is training when you confirm (in epoch ${job.epoch + 1} unless that ends first), frees its GPU and the job waits as paused; Resume continues it from that checkpoint.`,
    send: (job, values, reason) => post(`${jobUrl(job.id)}/pause`, { reason }, { "Idempotency-Key": newKey() }),
    done: () => "Pause requested: the worker checkpoints at the end of its current batch.",
  },

  resume: {
    title: "Resume the job",
    confirm: "Resume",
    allowed: (job) => RESUMABLE.includes(job.state),
    why: (job) => `a ${stateLabel(job.state)} job cannot be resumed`,
    fields: (job, ctx) => [
      select("from", "From", fromOptions(ctx.checkpoints, "last")),
      select("stage", "Continue in stage", [{ value: "", text: "the checkpoint's stage" }, ...[1, 2, 3].map((n) => ({ value: String(n), text: `stage ${n}` }))]),
      number("lr", "New base lr", { placeholder: `${g(job.spec.lr)} (unchanged)` }),
      number("epochs", "New epoch budget", { type: "int", placeholder: `${job.epochs} (unchanged)` }),
    ],
    summary(job, values, ctx) {
      const record = pickCheckpoint(ctx.checkpoints, values.from || "last");
      const baseLr = values.lr ?? job.spec.lr;
      const stage = values.stage ? Number(values.stage) : record ? record.stage : job.stage;
      const parts = [`The job is queued again (attempt ${job.attempt + 1}) and continues from ${checkpointText(record, values.from || "last")}`];
      parts.push(`in stage ${stage}`);
      if (values.lr !== undefined) parts.push(`with base lr ${g(values.lr)}`);
      if (stage >= 2) parts.push(`(${unfreezeText(job.spec, stage, baseLr)})`);
      parts.push(`for a budget of ${values.epochs ?? job.epochs} epochs`);
      let sentence = `${parts.join(" ")}.`;
      if (record && record.epoch < job.epoch) sentence += ` Epochs ${record.epoch + 1}–${job.epoch} already recorded are marked superseded.`;
      return sentence;
    },
    send(job, values, reason) {
      const body = { from: values.from || "last", reason };
      for (const key of ["stage", "lr", "epochs"]) if (values[key] !== undefined && values[key] !== "") body[key] = key === "stage" ? Number(values[key]) : values[key];
      return post(`${jobUrl(job.id)}/resume`, body);
    },
    done: (job, result) => `Resumed: attempt ${result.attempt} is queued.`,
  },

  fork: {
    title: "Fork a new job from a checkpoint",
    confirm: "Fork",
    allowed: (job, ctx) => ctx.checkpoints.some((c) => c.kind !== "onnx"),
    why: () => "the job has no checkpoint yet",
    fields: (job, ctx) => [
      select("from", "From", fromOptions(ctx.checkpoints, "best")),
      text("name", "Name of the new job", `${job.name}-fork`),
      number("stage2.unfreeze_ratio", "Stage 2 unfreezes (fraction)", { placeholder: `${g(job.spec.stage2.unfreeze_ratio)} (unchanged)` }),
      number("stage2.lr", "Stage-2 lr", { placeholder: `${g(stageLr(job.spec, 2))} (unchanged)` }),
      number("stage2.gate_f1", "Stage-2 gate F1", { placeholder: `${g(job.spec.stage2.gate_f1)} (unchanged)` }),
      number("epochs", "Epoch budget", { type: "int", placeholder: `${job.epochs} (unchanged)` }),
    ],
    summary(job, values, ctx) {
      const record = pickCheckpoint(ctx.checkpoints, values.from || "best");
      const overrides = values.stage2 || {};
      const spec = { ...job.spec, stage2: { ...job.spec.stage2, ...overrides } };
      const name = values.name || `${job.name}-fork`;
      const stage = record ? record.stage : job.stage;
      const plan = stage >= 2 ? `continues in stage ${stage}; ${unfreezeText(spec, 2)}` : `continues stage 1; at the gate (F1 ≥ ${g(spec.stage2.gate_f1)}) ${unfreezeText(spec, 2)}`;
      return `A new job “${name}” starts from ${checkpointText(record, values.from || "best")} and ${plan}. This job is not changed; both appear on the compare page.`;
    },
    send(job, values, reason) {
      const body = { from: values.from || "best", reason };
      if (values.name) body.name = values.name;
      if (values.stage2 && Object.keys(values.stage2).length) body.stage2 = values.stage2;
      if (values.epochs !== undefined) body.epochs = values.epochs;
      return post(`${jobUrl(job.id)}/fork`, body, { "Idempotency-Key": newKey() });
    },
    done: (job, result) => `Forked: “${result.name}” is queued.`,
    navigate: (result) => pageUrl(result.id),
  },

  cancel: {
    title: "Cancel the job",
    confirm: "Cancel job",
    danger: true,
    allowed: (job) => CANCELLABLE.includes(job.state),
    why: (job) => `a ${stateLabel(job.state)} job cannot be cancelled`,
    fields: () => [],
    summary: (job) =>
      job.state === "running"
        ? `The worker checkpoints at the end of the batch it is training when you confirm (in epoch ${job.epoch + 1} unless that ends first) and the job ends as cancelled; it can be resumed later from that checkpoint.`
        : `The ${stateLabel(job.state)} job is cancelled now; it can be resumed later from its last checkpoint.`,
    send: (job, values, reason) => post(`${jobUrl(job.id)}/cancel`, { reason }, { "Idempotency-Key": newKey() }),
    done: (job, result) => (result.command ? "Cancel requested: the worker stops at the end of its current batch." : "Cancelled."),
  },
};

export class Controls {
  /**
   * bars: the elements holding the action buttons; ctx: {job(), checkpoints(), race(), mayOperate(),
   * onDone(action, result)}; actions: name -> {title, allowed, why, fields, summary, send, done}.
   */
  constructor(bars, dialog, ctx, actions = JOB_ACTIONS) {
    this.bars = bars;
    this.buttons = bars.flatMap((bar) => $$("button[data-action]", bar));
    this.dialog = dialog;
    this.form = $("form", dialog);
    this.ctx = ctx;
    this.actions = actions;
    this.action = null;
    for (const button of this.buttons) button.addEventListener("click", () => this.open(button.dataset.action));
    for (const close of $$("[data-close]", dialog)) close.addEventListener("click", () => dialog.close());
    this.form.addEventListener("input", () => this.refreshSummary());
    this.form.addEventListener("change", () => this.refreshSummary());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  context() {
    return { checkpoints: this.ctx.checkpoints(), race: this.ctx.race ? this.ctx.race() : null };
  }

  /** Enable the buttons the job's state allows; say why the others are off. */
  update() {
    const job = this.ctx.job();
    if (!job) return;
    const operator = this.ctx.mayOperate();
    for (const bar of this.bars) if ("operatorOnly" in bar.dataset) bar.hidden = !operator;
    for (const button of this.buttons) {
      const action = this.actions[button.dataset.action];
      const ok = operator && action.allowed(job, this.context());
      button.disabled = !ok;
      button.title = !operator ? "your key is a viewer: steering needs an operator key" : ok ? action.title : action.why(job, this.context());
    }
  }

  open(name) {
    const job = this.ctx.job();
    const action = this.actions[name];
    this.action = name;
    clearErrors(this.form);
    this.dialog.dataset.action = name;
    $("#control-title").textContent = `${action.title} — ${job.name}`;
    $("#control-fields").replaceChildren(...action.fields(job, this.context()));
    $("#control-reason").value = "";
    const confirm = $("#control-confirm");
    confirm.textContent = action.confirm;
    confirm.className = action.danger ? "danger" : "primary";
    confirm.disabled = false;
    this.refreshSummary();
    this.dialog.showModal();
    $("#control-reason").focus();
  }

  values() {
    const body = formBody(this.form);
    delete body.reason;
    return body;
  }

  refreshSummary() {
    if (!this.action) return;
    const action = this.actions[this.action];
    const values = this.values();
    if (action.visible) {
      for (const [name, show] of Object.entries(action.visible(values))) {
        const box = this.form.querySelector(`.field[data-field="${name}"]`);
        if (box) box.hidden = !show;
      }
    }
    $("#control-summary").textContent = action.summary(this.ctx.job(), this.values(), this.context());
  }

  async submit() {
    const name = this.action;
    const action = this.actions[name];
    const job = this.ctx.job();
    const reason = $("#control-reason").value.replace(/\s+/g, " ").trim(); // one line: the API refuses line breaks
    clearErrors(this.form);
    if (!reason) {
      showFieldErrors(this.form, [{ field: "reason", message: "A reason is required: it goes into the audit trail." }]);
      return;
    }
    const values = this.values();
    const confirm = $("#control-confirm");
    confirm.disabled = true;
    try {
      const result = await action.send(job, values, reason);
      this.dialog.close();
      toast(action.done(job, result, values), "ok");
      if (action.navigate) location.assign(action.navigate(result));
      else this.ctx.onDone(name, result);
    } catch (error) {
      confirm.disabled = false;
      if (error instanceof ApiError && error.fieldErrors.length) {
        const rest = showFieldErrors(this.form, error.fieldErrors);
        formError(this.form, rest.length ? `${error.problem.title}: ${rest.join("; ")}` : error.problem.detail || error.problem.title);
      } else {
        formError(this.form, describe(error));
      }
    }
  }
}
