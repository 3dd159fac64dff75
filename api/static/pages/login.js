// Log in: username, password and eauth back end -> POST /login.  The back end chosen last is remembered
// (localStorage holds only that name, never a password or a token).

import { field, h, heading } from "../dom.js";

const EAUTH_KEY = "rx.eauth";

export function mount(ctx, main) {
  const user = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none",
                            spellcheck: "false" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const eauth = h("input", { name: "eauth", list: "eauth-list", required: true,
                             value: localStorage.getItem(EAUTH_KEY) || "pam" });
  const choices = h("datalist", { id: "eauth-list" }, ["pam", "file", "ldap"].map((v) => h("option", { value: v })));
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    field("Username", user),
    field("Password", pass),
    field("Authentication back end (eauth)", eauth, "as in the master's external_auth: pam, file, ..."),
    choices, button, error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      await ctx.api.login(user.value, pass.value, eauth.value.trim());
      localStorage.setItem(EAUTH_KEY, eauth.value.trim());
      pass.value = "";
      ctx.announce("Logged in");
      ctx.loggedIn();
    } catch (err) {
      error.textContent = `Login failed: ${err.message}`;
      pass.select();
    } finally {
      button.disabled = false;
    }
  });
  const title = heading("Log in to rx");
  title.id = "login-title";
  main.append(h("section", { class: "card narrow" }, title,
    ctx.note ? h("p", { class: "note" }, ctx.note) : null, form));
  user.focus();
}
