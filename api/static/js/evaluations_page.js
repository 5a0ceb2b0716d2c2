// The evaluations list and the form that queues one (POST /evaluations). The list refreshes while
// any evaluation is queued or running; each row links to the evaluation's own page.

import { ApiError, api, describe, post } from "./api.js";
import { $, $$, h, liveIndicator, replace } from "./dom.js";
import { age, f1, stateLabel } from "./format.js";
import { clearErrors, formBody, formError, showFieldErrors } from "./forms.js";
import { showWhoami } from "./session.js";

const REFRESH_MS = 3000;
const form = $("#evaluation-form");
const state = { rows: [], cursor: null };

export const evaluationPage = (id) => `/ui/evaluations/${encodeURIComponent(id)}`;

/** Show only the inputs of the chosen source ("path", "upload", "job") of one group. */
function showKind(select, prefix) {
  for (const field of $$(`.field[data-field^="${prefix}."]`, form)) field.hidden = field.dataset.kind !== select.value;
}

function row(e) {
  const summary = e.summary || {};
  const at = summary.at_threshold || {};
  return h("tr", { "data-evaluation-id": e.id },
    h("td", {}, h("a", { href: evaluationPage(e.id) }, e.name || e.id.slice(0, 8))),
    h("td", {}, h("span", { class: `badge state-${e.state}` }, stateLabel(e.state))),
    h("td", { class: "mono" }, e.model_path),
    h("td", { class: "mono" }, `${e.data_path} (${e.split})`),
    h("td", { class: "num" }, f1(at.f1)),
    h("td", { class: "num" }, f1(summary.roc_auc)),
    h("td", { class: "num" }, age(e.created_at)));
}

function render() {
  replace($("#evaluations-body"), state.rows.map(row));
  $("#evaluations-empty").hidden = state.rows.length > 0;
  $("#load-more").hidden = !state.cursor;
}

async function load(more = false) {
  const query = more && state.cursor ? `&cursor=${encodeURIComponent(state.cursor)}` : "";
  try {
    const page = await api(`/evaluations?limit=20${query}`);
    state.rows = more ? state.rows.concat(page.data) : page.data;
    state.cursor = page.next_cursor;
    render();
    $("#list-error").textContent = "";
  } catch (error) {
    $("#list-error").textContent = describe(error);
  }
}

async function submit(event) {
  event.preventDefault();
  clearErrors(form);
  const body = formBody(form);
  try {
    const created = await post("/evaluations", body);
    location.assign(evaluationPage(created.id));
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      const left = showFieldErrors(form, error.fieldErrors);
      if (left.length) formError(form, left.join("; "));
    } else {
      formError(form, describe(error));
    }
  }
}

function init() {
  showWhoami();
  for (const [id, prefix] of [["#model-kind", "model"], ["#data-kind", "data"]]) {
    const select = $(id);
    select.addEventListener("change", () => showKind(select, prefix));
    showKind(select, prefix);
  }
  form.addEventListener("submit", submit);
  $("#load-more").addEventListener("click", () => load(true));
  load();
  setInterval(() => {
    const busy = state.rows.some((e) => e.state === "queued" || e.state === "running");
    liveIndicator(busy ? "on" : "off", busy ? "refreshing while evaluations run" : "idle");
    if (busy && !document.hidden) load();
  }, REFRESH_MS);
}

init();
