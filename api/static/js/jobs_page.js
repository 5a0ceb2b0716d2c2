// The jobs list: filters kept in the URL, a keyed table refreshed by polling GET /jobs every few
// seconds while the tab is visible, checkboxes to compare jobs, and the new-job dialog.

import { api, describe, pageUrl } from "./api.js";
import { $, h, liveIndicator, replace } from "./dom.js";
import { ACTIVE_STATES, age, f1, stateLabel } from "./format.js";
import { setupNewJob } from "./new_job.js";
import { canOperate, showWhoami } from "./session.js";

const POLL_MS = 3000;
const PAGE = 50;
const MAX_SHOWN = 500; // the server's largest page; one request per refresh stays cheap
const table = { rows: new Map(), selected: new Set(), shown: PAGE, cursor: null };
const form = $("#filters");
const body = $("#jobs-body");

function filtersFromUrl() {
  const query = new URLSearchParams(location.search);
  return { state: query.get("state") || "", stage: query.get("stage") || "", name: query.get("name") || "" };
}

function filtersFromForm() {
  return { state: form.state.value, stage: form.stage.value, name: form.name.value.trim() };
}

function writeUrl(filters) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
  const search = query.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

function apiQuery(filters, limit) {
  const query = new URLSearchParams();
  const states = filters.state === "active" ? ACTIVE_STATES : filters.state ? [filters.state] : [];
  for (const state of states) query.append("state", state);
  if (filters.stage) query.set("stage", filters.stage);
  if (filters.name) query.set("name", filters.name);
  query.set("limit", String(limit));
  return query;
}

function stateBadge(job) {
  return h("span", { class: `badge state-${job.state}`, title: job.state_reason || job.state }, stateLabel(job.state));
}

function cells(job) {
  const progress = h("progress", { max: "1", value: String(job.progress) });
  const name = h("td", { class: "name" }, h("a", { href: pageUrl(job.id) }, job.name), h("small", { class: "muted mono" }, ` ${job.id.slice(0, 8)}`));
  if (job.parent_job_id) name.append(h("small", { class: "muted" }, " · fork"));
  return [
    name,
    h("td", {}, stateBadge(job)),
    h("td", {}, h("span", { class: `pill stage-${job.stage}` }, `stage ${job.stage}`)),
    h("td", { class: "wide" }, h("div", { class: "epoch" }, progress, h("span", {}, `${job.epoch} / ${job.epochs}`))),
    h("td", { class: "num", title: job.best_epoch ? `epoch ${job.best_epoch}` : "" }, f1(job.best_f1)),
    h("td", { class: "num", title: new Date(job.created_at).toLocaleString() }, age(job.created_at)),
  ];
}

function rowFor(job) {
  let row = table.rows.get(job.id);
  if (!row) {
    const box = h("input", { type: "checkbox", "aria-label": "select for compare", "data-job-id": job.id });
    box.addEventListener("change", () => {
      if (box.checked) table.selected.add(job.id);
      else table.selected.delete(job.id);
      updateCompareButton();
    });
    row = { tr: h("tr", { "data-job-id": job.id }), box: h("td", { class: "narrow" }, box) };
    table.rows.set(job.id, row);
  }
  replace(row.tr, row.box, cells(job));
  row.tr.dataset.state = job.state;
  return row.tr;
}

function render(jobs) {
  const seen = new Set(jobs.map((job) => job.id));
  for (const id of [...table.rows.keys()]) if (!seen.has(id)) table.rows.delete(id);
  replace(body, jobs.map(rowFor));
  $("#jobs-empty").hidden = jobs.length > 0;
}

function updateCompareButton() {
  const button = $("#compare-selected");
  button.disabled = table.selected.size < 2;
  button.textContent = table.selected.size ? `Compare selected (${table.selected.size})` : "Compare selected";
}

let inFlight = null;
async function refresh() {
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  const filters = filtersFromForm();
  try {
    const page = await api(`/jobs?${apiQuery(filters, table.shown)}`, { signal: controller.signal });
    render(page.data);
    table.cursor = page.next_cursor;
    $("#load-more").hidden = !page.next_cursor || table.shown >= MAX_SHOWN; // past that: filter
    $("#list-error").textContent = "";
    liveIndicator("on", `live: refreshed every ${POLL_MS / 1000} s`);
  } catch (error) {
    if (error.name === "AbortError") return;
    $("#list-error").textContent = describe(error);
    liveIndicator("error", "refresh failed; retrying");
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

function onFilterChange() {
  writeUrl(filtersFromForm());
  table.shown = PAGE;
  refresh();
}

function setupFilters() {
  const filters = filtersFromUrl();
  form.state.value = filters.state;
  form.stage.value = filters.stage;
  form.name.value = filters.name;
  form.addEventListener("submit", (event) => event.preventDefault());
  form.state.addEventListener("change", onFilterChange);
  form.stage.addEventListener("change", onFilterChange);
  let timer = null;
  form.name.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(onFilterChange, 300);
  });
}

function setup() {
  setupFilters();
  setupNewJob($("#new-job"), $("#new-job-dialog"));
  $("#compare-selected").addEventListener("click", () => {
    const query = new URLSearchParams();
    for (const id of table.selected) query.append("ids", id);
    location.assign(`/ui/compare?${query}`);
  });
  $("#load-more").addEventListener("click", () => {
    table.shown = Math.min(MAX_SHOWN, table.shown + PAGE);
    refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_MS);
  refresh();
  showWhoami().then((me) => {
    const button = $("#new-job");
    button.disabled = !canOperate(me);
    if (button.disabled) button.title = "your key is a viewer: submitting needs an operator key";
  });
}

setup();
