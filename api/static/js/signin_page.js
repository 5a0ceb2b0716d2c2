// Sign in with an API key: POST it once to the session endpoint, which answers with an HttpOnly
// session cookie; then go back to the page that asked (a local path only).

import { ApiError, describe, post } from "./api.js";
import { $ } from "./dom.js";
import { clearErrors, formError, showFieldErrors } from "./forms.js";
import { SESSION_PATH } from "./session.js";

const form = $("#signin-form");
const next = document.body.dataset.next || "/";

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const key = $("#api-key").value.trim();
  if (!key) {
    showFieldErrors(form, [{ field: "key", message: "Paste your API key." }]);
    return;
  }
  try {
    await post(SESSION_PATH, { key });
    $("#api-key").value = "";
    location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  } catch (error) {
    if (error instanceof ApiError && error.fieldErrors.length) showFieldErrors(form, error.fieldErrors);
    formError(form, error instanceof ApiError && error.status === 401 ? "That key is not valid (or was revoked)." : describe(error));
  }
});
