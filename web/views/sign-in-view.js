// Sign in: the server asked for credentials (401). The user pastes an API key or a token; it is
// tried with one read before it is kept, and the page the user was on comes back.
import { ApiError, api, describeError } from "../lib/api.js";
import { clearCredential, credential, setCredential } from "../lib/credentials.js";
import { h, mount } from "../lib/dom.js";

export function signInView(main, { onSignedIn }) {
  const hadCredential = Boolean(credential());
  const error = h("div", { class: "error-box", role: "alert", hidden: !hadCredential });
  if (hadCredential) error.textContent = "The server did not accept the stored key; sign in again.";
  const input = h("input", {
    id: "credential",
    name: "credential",
    type: "password",
    autocomplete: "current-password",
    required: true,
    spellcheck: "false",
  });
  const remember = h("input", { id: "remember", type: "checkbox" });
  const submit = h("button", { class: "btn primary", type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card stack sign-in",
      "aria-labelledby": "sign-in-title",
      onsubmit: async (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        submit.disabled = true;
        error.hidden = true;
        setCredential(value, remember.checked);
        try {
          await api("/threads/count", { method: "POST", body: {} });
          onSignedIn();
        } catch (err) {
          clearCredential();
          error.hidden = false;
          error.textContent =
            err instanceof ApiError && err.status === 401
              ? "That key or token was not accepted."
              : (describeError(err)?.title ?? String(err));
          input.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", { id: "sign-in-title", class: "h2" }, "Sign in"),
    h(
      "p",
      { class: "help" },
      "This server needs an API key or a token. It is sent with every request from this tab and never put in a link.",
    ),
    error,
    h("div", { class: "field" }, h("label", { for: "credential" }, "API key or token"), input),
    h(
      "div",
      { class: "row gap" },
      remember,
      h("label", { for: "remember" }, "Remember on this device"),
    ),
    h("div", { class: "row gap" }, submit),
  );
  clearCredential();
  mount(main, form);
  input.focus();
}
