// The events timeline of a job: newest first, one line per event saying what happened, who did it
// and why, with the evidence on demand. Epoch events (one per metrics row) are hidden unless "all".

import { pageUrl } from "./api.js";
import { h } from "./dom.js";
import { clock, f1, g, stateLabel } from "./format.js";

const QUIET = new Set(["epoch"]);

function commandText(evidence) {
  const params = evidence.params || {};
  if (evidence.kind === "force_stage") return `force stage ${params.stage}`;
  return String(evidence.kind || "command").replace(/_/g, " ");
}

function overridesText(overrides) {
  const value = (v) => (typeof v === "number" ? g(v) : typeof v === "object" ? JSON.stringify(v) : String(v));
  const parts = Object.entries(overrides || {}).map(([k, v]) => `${k} ${value(v)}`);
  return parts.length ? ` with ${parts.join(", ")}` : "";
}

/** One sentence for an event. */
export function describeEvent(event) {
  const ev = event.evidence || {};
  switch (event.kind) {
    case "created":
      return event.reason || "created";
    case "state_change":
      return `${stateLabel(event.from_state)} → ${stateLabel(event.to_state)}`;
    case "stage_change":
      if (event.from_stage === null || event.from_stage === undefined) return `starts in stage ${event.to_stage}`;
      if (event.from_stage === event.to_stage) return `stage ${event.to_stage} changed at epoch ${event.epoch} (${ev.trigger || "change"})`;
      return `stage ${event.from_stage} → ${event.to_stage} at epoch ${event.epoch} (${ev.trigger || "change"})`;
    case "gate_check": {
      const sign = ev.passed ? "≥" : "<";
      return `gate to stage ${ev.stage} read at epoch ${ev.epoch}: F1 ${f1(ev.f1)} ${sign} ${g(ev.threshold)} → ${ev.action}`;
    }
    case "command_requested":
      return `${commandText(ev)} requested`;
    case "command_delivered":
      return `${commandText(ev)} delivered to the worker`;
    case "command_applied":
      return `${commandText(ev)} applied at epoch ${event.epoch}: ${ev.result || ""}`;
    case "command_refused":
      return `${commandText(ev)} refused: ${ev.result || ""}`;
    case "command_expired":
      return `${commandText(ev)} expired: ${ev.result || ""}`;
    case "command_merged":
      return `${commandText(ev)} requested again: joined the open one`;
    case "decision": {
      const detail = ev.action === "extend" ? ` by ${ev.epochs} epochs` : ev.action === "retry" ? ` with lr ${g(ev.lr)}` : "";
      return `decision at the stage-${ev.gate_stage} gate (F1 ${f1(ev.f1)} < ${g(ev.threshold)}): ${ev.action}${detail}`;
    }
    case "resume_requested":
      return `resume requested from ${ev.from || "last"} (epoch ${ev.epoch}, stage ${ev.stage})${overridesText(ev.overrides)}`;
    case "forked":
      return `forked from ${ev.from || "a checkpoint"} (epoch ${ev.epoch}, stage ${ev.stage})${overridesText(ev.overrides)}`;
    case "epoch":
      return `epoch ${event.epoch} recorded`;
    default:
      return event.reason || event.kind.replace(/_/g, " ");
  }
}

/** The reason line, unless the description already says it. */
function reasonOf(event, text) {
  if (!event.reason || text.includes(event.reason)) return null;
  return event.reason;
}

export class Timeline {
  constructor(list, toggle) {
    this.list = list;
    this.toggle = toggle;
    this.events = [];
    toggle.addEventListener("change", () => this.rebuild());
  }

  visible(event) {
    return this.toggle.checked || !QUIET.has(event.kind);
  }

  item(event) {
    const text = describeEvent(event);
    const reason = reasonOf(event, text);
    const meta = [`by ${event.actor}`];
    if (event.attempt) meta.push(`attempt ${event.attempt}`);
    const li = h(
      "li",
      { class: `ev kind-${event.kind}`, "data-seq": String(event.seq), "data-kind": event.kind },
      h("time", { datetime: event.at, title: event.at }, clock(event.at)),
      h("span", { class: "ev-kind" }, event.kind.replace(/_/g, " ")),
      h("div", { class: "ev-text" }, text),
      reason ? h("div", { class: "ev-reason" }, `“${reason}”`) : null,
      h("div", { class: "ev-meta" }, meta.join(" · ")),
    );
    if (event.kind === "forked" && event.evidence && event.evidence.child_job_id) {
      li.append(h("a", { href: pageUrl(event.evidence.child_job_id), class: "ev-link" }, "open the fork"));
    }
    if (event.evidence && Object.keys(event.evidence).length) {
      li.append(h("details", {}, h("summary", {}, "evidence"), h("pre", {}, JSON.stringify(event.evidence, null, 1))));
    }
    return li;
  }

  /** Add events (any order, duplicates ignored). */
  add(events) {
    const known = new Set(this.events.map((e) => e.seq));
    const fresh = events.filter((e) => !known.has(e.seq)).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return;
    const inOrder = !this.events.length || fresh[0].seq > this.events[this.events.length - 1].seq;
    this.events.push(...fresh);
    if (!inOrder) {
      this.events.sort((a, b) => a.seq - b.seq);
      this.rebuild();
      return;
    }
    for (const event of fresh) if (this.visible(event)) this.list.prepend(this.item(event));
  }

  rebuild() {
    const items = this.events.filter((e) => this.visible(e)).map((e) => this.item(e)).reverse();
    this.list.replaceChildren(...items);
  }
}
