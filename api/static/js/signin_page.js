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
    location.assign(sameOrigin(next));
  } catch (error) {
    if (error instanceof ApiError && error.fieldErrors.length) showFieldErrors(form, error.fieldErrors);
    formError(form, error instanceof ApiError && error.status === 401 ? "That key is not valid (or was revoked)." : describe(error));
  }
});

/** `target` as the browser itself resolves it, if that stays on this origin; else "/". The URL
 * parser drops tabs and newlines and reads a backslash as "/": no string test can stand in for it. */
function sameOrigin(target) {
  let url;
  try {
    url = new URL(target, location.href);
  } catch {
    return "/";
  }
  return url.origin === location.origin ? `${url.pathname}${url.search}${url.hash}` : "/";
}
