// Form helpers: read a form into a JSON body (dotted names nest), show 422 field errors next to
// their fields, and clear them.

import { $$, replace } from "./dom.js";

function typed(input) {
  const kind = input.dataset.type;
  if (kind === "bool") return input.checked;
  const raw = input.value.trim();
  if (raw === "") return undefined;
  if (kind === "json") {
    try {
      return JSON.parse(raw);
    } catch (_) {
      return raw; // let the server name what is wrong with it
    }
  }
  if (kind === "int" || kind === "float") {
    const number = Number(raw);
    return Number.isFinite(number) ? number : raw; // let the server name what is wrong with it
  }
  return raw;
}

/** {"stage2.gate_f1": 0.8} -> {stage2: {gate_f1: 0.8}}; empty optional fields are left out. */
export function formBody(form) {
  const body = {};
  for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
    if (input.matches(":disabled") || input.closest("[hidden]")) continue; // also a disabled fieldset's
    const value = typed(input);
    if (value === undefined) continue;
    const path = input.name.split(".");
    let target = body;
    for (const key of path.slice(0, -1)) target = target[key] ??= {};
    target[path[path.length - 1]] = value;
  }
  return body;
}

export function clearErrors(form) {
  for (const field of $$(".field.invalid", form)) field.classList.remove("invalid");
  for (const small of $$(".field-error", form)) small.textContent = "";
  for (const p of $$(".form-error", form)) p.textContent = "";
}

/** Put each {field, message} next to its field; return the messages that matched no field. */
export function showFieldErrors(form, errors) {
  const unmatched = [];
  for (const error of errors) {
    const field = error.field ? form.querySelector(`.field[data-field="${CSS.escape(error.field)}"]`) : null;
    if (field) {
      field.classList.add("invalid");
      field.querySelector(".field-error").textContent = error.message;
    } else {
      unmatched.push(error.field ? `${error.field}: ${error.message}` : error.message);
    }
  }
  return unmatched;
}

export function formError(form, message) {
  const target = form.querySelector(".form-error");
  if (target) replace(target, message);
}
