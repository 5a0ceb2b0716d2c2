// The "new job" dialog of the jobs list: POST /jobs with an Idempotency-Key per opened form, field
// errors from a 422 problem shown next to their fields, then the new job's page.

import { ApiError, describe, newKey, pageUrl, post } from "./api.js";
import { $ } from "./dom.js";
import { clearErrors, formBody, formError, showFieldErrors } from "./forms.js";

export function setupNewJob(button, dialog) {
  const form = $("form", dialog);
  let key = newKey();
  button.addEventListener("click", () => {
    key = newKey();
    clearErrors(form);
    dialog.showModal();
    form.querySelector("input[name=name]").select();
  });
  for (const close of dialog.querySelectorAll("[data-close]")) close.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const job = await post("/jobs", formBody(form), { "Idempotency-Key": key });
      location.assign(pageUrl(job.id));
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.fieldErrors.length) {
        key = newKey(); // a changed body needs a new key
        const rest = showFieldErrors(form, error.fieldErrors);
        formError(form, rest.length ? rest.join("; ") : "Please correct the fields marked above.");
      } else {
        formError(form, describe(error));
      }
    }
  });
}
