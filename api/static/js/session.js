// Who is signed in (shown in the header) and signing out. The session endpoints and the cookie
// names are the auth layer's contract (docs/security.md, "Dashboard sign-in").

import { AUTH, api, ApiError } from "./api.js";
import { $, h, replace } from "./dom.js";

export const SESSION_PATH = "/session";

/** Show who is signed in; returns the session ({name, role, auth, ...}) or null. */
export async function showWhoami() {
  const box = $("#whoami");
  try {
    const me = await api(`${SESSION_PATH}/me`);
    if (me.auth === "off") {
      replace(box, h("span", { title: "the server runs with OCEC_AUTH=off" }, "auth off"));
      return me;
    }
    const signOut = h("button", { type: "button", class: "link" }, "sign out");
    signOut.addEventListener("click", async () => {
      await api(SESSION_PATH, { method: "DELETE" }).catch(() => null);
      location.assign(AUTH.signinPage);
    });
    replace(box, h("span", { title: `role: ${me.role}` }, `${me.name} · ${me.role}`), " ", signOut);
    return me;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    replace(box);
    return null;
  }
}

/** Whether the signed-in key may steer jobs (viewers may only look). */
export const canOperate = (me) => !me || me.role !== "viewer";
