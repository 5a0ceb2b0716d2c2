// Checks a generated form's inputs against the bounds the job spec gave them (data-* attributes
// from the spec's JSON schema, api/job_form.py), all at once, worded like the server's 422s.
// The server checks again; this only spares a round trip per mistake.

import { $$ } from "./dom.js";

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numberProblem(input, raw) {
  if (!NUMBER.test(raw)) return input.dataset.type === "int" ? "Input should be a valid integer" : "Input should be a valid number";
  const value = Number(raw);
  if (input.dataset.type === "int" && !Number.isInteger(value)) return "Input should be a valid integer";
  const d = input.dataset;
  if (d.minimum !== undefined && value < Number(d.minimum)) return `Input should be greater than or equal to ${d.minimum}`;
  if (d.exclusiveminimum !== undefined && value <= Number(d.exclusiveminimum)) return `Input should be greater than ${d.exclusiveminimum}`;
  if (d.maximum !== undefined && value > Number(d.maximum)) return `Input should be less than or equal to ${d.maximum}`;
  if (d.exclusivemaximum !== undefined && value >= Number(d.exclusivemaximum)) return `Input should be less than ${d.exclusivemaximum}`;
  return null;
}

function textProblem(input, raw) {
  const d = input.dataset;
  if (d.minlength !== undefined && raw.length < Number(d.minlength)) return `String should have at least ${d.minlength} character(s)`;
  if (d.maxlength !== undefined && raw.length > Number(d.maxlength)) return `String should have at most ${d.maxlength} characters`;
  if (d.pattern !== undefined && !new RegExp(d.pattern, "u").test(raw)) return `String should match pattern '${d.pattern}'`;
  return null;
}

function problemOf(input) {
  const raw = input.value.trim();
  if (raw === "") return input.dataset.required ? "Field required" : null;
  if (input.dataset.type === "json") {
    try {
      JSON.parse(raw);
      return null;
    } catch (_) {
      return "Input should be valid JSON";
    }
  }
  if (input.dataset.type === "int" || input.dataset.type === "float") return numberProblem(input, raw);
  return textProblem(input, raw);
}

/** [{field, message}] for every enabled input of ``form`` that breaks its bounds. */
export function fieldProblems(form) {
  const problems = [];
  for (const input of $$("input[name], textarea[name]", form)) {
    if (input.disabled || input.type === "checkbox" || input.closest("fieldset:disabled")) continue;
    const message = problemOf(input);
    if (message) problems.push({ field: input.name, message });
  }
  return problems;
}
