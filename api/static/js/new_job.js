// The "new job" dialog of the jobs list. The form is generated from the job spec (api/job_form.py),
// each input carrying the spec's bounds; every field is checked before posting so all mistakes
// show at once, then POST /jobs with an Idempotency-Key per opened form (the server's 422 field
// errors land next to their fields too). Presets fill the form; dataset and model inputs pick an
// earlier upload or upload a file from here.

import { ApiError, api, describe, newKey, pageUrl, post, upload } from "./api.js";
import { $, $$, replace } from "./dom.js";
import { clearErrors, formBody, formError, showFieldErrors } from "./forms.js";
import { fieldProblems } from "./form_checks.js";

const USE_AS = { models: "pretrain", datasets: "data_root" };

function setValue(input, value) {
  if (input.type === "checkbox") input.checked = value === true || value === "true";
  else input.value = value === null || value === undefined ? "" : String(value);
}

/** Set the recipe fields any preset names to this preset's values (else their defaults); the
 * dataset, model, name and everything no preset names keep what the user typed. */
function applyPreset(form, select) {
  const option = select.selectedOptions[0];
  const values = JSON.parse(option.dataset.values || "{}");
  const named = new Set([...select.options].flatMap((o) => Object.keys(JSON.parse(o.dataset.values || "{}"))));
  for (const name of named) {
    const key = CSS.escape(name);
    const input = form.querySelector(`[name="${key}"]`) || form.querySelector(`[data-section-switch="${key}"]`);
    if (!input) continue;
    const section = input.dataset.sectionSwitch !== undefined; // a whole optional section: on or off
    setValue(input, Object.hasOwn(values, name) ? values[name] : section ? false : input.dataset.default);
    if (section) input.dispatchEvent(new Event("change"));
    if (section && input.checked) $("details.advanced", form).open = true; // show what it switched on
  }
  replace($("#preset-why", form), option.dataset.why || "");
}

function setupSections(form) {
  for (const toggle of $$("[data-section-switch]", form)) {
    const section = toggle.closest("fieldset");
    const sync = () => {
      section.disabled = !toggle.checked;
      toggle.disabled = false; // the switch lives in the legend, which a disabled fieldset spares
    };
    toggle.addEventListener("change", sync);
    sync();
  }
}

async function fillPicker(form, kind) {
  const list = $(`#pick-${kind}`, form);
  try {
    const page = await api(`/${kind}?limit=100`);
    list.replaceChildren(
      ...page.data.map((u) => {
        const option = document.createElement("option");
        option.value = u.use_as[USE_AS[kind]];
        option.label = `${u.filename} · ${(u.created_at || "").slice(0, 10)}`;
        return option;
      }),
    );
  } catch (_) {
    // the picker is a convenience: typing a path still works
  }
}

function setupUploads(form) {
  for (const file of $$("input[data-upload]", form)) {
    file.addEventListener("change", async () => {
      const kind = file.dataset.upload;
      const target = form.querySelector(`[name="${CSS.escape(file.dataset.target)}"]`);
      const field = target.closest(".field");
      const bar = $(".upload-progress", field);
      const chosen = file.files[0];
      if (!chosen) return;
      field.classList.remove("invalid");
      replace($(".field-error", field), "");
      bar.hidden = false;
      try {
        const made = await upload(`/${kind}`, chosen, (fraction) => (bar.value = fraction));
        target.value = made.use_as[USE_AS[kind]];
        await fillPicker(form, kind);
      } catch (error) {
        showFieldErrors(form, [{ field: target.name, message: `upload failed: ${describe(error)}` }]);
      } finally {
        bar.hidden = true;
        file.value = "";
      }
    });
  }
}

export function setupNewJob(button, dialog) {
  const form = $("form", dialog);
  const presets = $("#preset", form);
  let key = newKey();
  setupSections(form);
  setupUploads(form);
  applyPreset(form, presets);
  presets.addEventListener("change", () => applyPreset(form, presets));
  button.addEventListener("click", () => {
    key = newKey();
    clearErrors(form);
    dialog.showModal();
    fillPicker(form, "models");
    fillPicker(form, "datasets");
    form.querySelector("input[name=name]").select();
  });
  for (const close of dialog.querySelectorAll("[data-close]")) close.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const problems = fieldProblems(form);
    if (problems.length) {
      openAdvancedIfNeeded(form, problems);
      showFieldErrors(form, problems);
      formError(form, `${problems.length} field${problems.length > 1 ? "s need" : " needs"} a correction.`);
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const job = await post("/jobs", formBody(form), { "Idempotency-Key": key });
      location.assign(pageUrl(job.id));
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.fieldErrors.length) {
        key = newKey(); // a changed body needs a new key
        openAdvancedIfNeeded(form, error.fieldErrors);
        const rest = showFieldErrors(form, error.fieldErrors);
        formError(form, rest.length ? rest.join("; ") : "Please correct the fields marked above.");
      } else {
        formError(form, describe(error));
      }
    }
  });
}

/** A mistake in a folded field must be seen: unfold "Advanced" when one is there. */
function openAdvancedIfNeeded(form, problems) {
  const advanced = $("details.advanced", form);
  const names = new Set(problems.map((p) => p.field));
  if ($$(".field[data-field]", advanced).some((f) => names.has(f.dataset.field))) advanced.open = true;
}
