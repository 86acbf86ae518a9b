// The console's entry point: a hash router (#/, #/approvals, #/graphs, #/threads/{id}) that
// mounts one view at a time into <main>, and the approval count in the navigation.
import { api, ApiError } from "./lib/api.js";
import { clearCredential, credential } from "./lib/credentials.js";
import { approvalsView } from "./views/approvals-view.js";
import { graphView } from "./views/graph-view.js";
import { threadView } from "./views/thread-view.js";
import { signInView } from "./views/sign-in-view.js";
import { threadsView } from "./views/threads-view.js";

const ROUTES = [
  { pattern: /^\/?$/, view: threadsView, nav: "threads" },
  { pattern: /^\/approvals\/?$/, view: approvalsView, nav: "approvals" },
  { pattern: /^\/graphs\/?$/, view: graphView, nav: "graphs" },
  { pattern: /^\/threads\/([^/]+)\/?$/, view: threadView, nav: "threads", params: ["id"] },
];

const main = document.getElementById("main");
let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?", 2);
  return { path, query: new URLSearchParams(query) };
}

let signingIn = false;

/** The server wants credentials: the sign-in form replaces the page until they are accepted. */
function showSignIn() {
  if (signingIn) return;
  signingIn = true;
  current?.controller.abort();
  current?.cleanup?.();
  current = { controller: new AbortController() };
  updateSignOut();
  signInView(main, {
    onSignedIn: () => {
      signingIn = false;
      updateSignOut();
      route();
      refreshApprovalCount();
    },
  });
}

function updateSignOut() {
  document.getElementById("sign-out").hidden = signingIn || !credential();
}

function route() {
  if (signingIn) return;
  updateSignOut();
  const { path, query } = parseHash();
  current?.controller.abort();
  current?.cleanup?.();
  const controller = new AbortController();
  const match = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (match && link.dataset.nav === match.r.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    main.replaceChildren();
    const p = document.createElement("p");
    p.className = "card empty";
    p.textContent = `Nothing at ${path}.`;
    main.append(p);
    current = { controller };
    return;
  }
  const params = Object.fromEntries(
    (match.r.params ?? []).map((name, i) => [name, decodeURIComponent(match.m[i + 1])]),
  );
  const cleanup = match.r.view(main, { params, query, signal: controller.signal });
  current = { controller, cleanup };
  // Move focus to the new page for keyboard and screen-reader users, without scrolling jumps.
  if (
    document.activeElement &&
    document.activeElement !== document.body &&
    !main.contains(document.activeElement)
  ) {
    main.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

async function refreshApprovalCount() {
  const badge = document.getElementById("approval-count");
  try {
    const pending = await api("/approvals");
    badge.textContent = String(pending.length);
    badge.hidden = pending.length === 0;
    badge.setAttribute("aria-label", `${pending.length} pending`);
    document.getElementById("server-state").hidden = true;
  } catch (err) {
    // A server that wants credentials is reachable: the sign-in form says what to do.
    document.getElementById("server-state").hidden = err instanceof ApiError && err.status === 401;
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("refinery:unauthorized", showSignIn);
document.getElementById("sign-out").addEventListener("click", () => {
  clearCredential();
  showSignIn();
});
window.addEventListener("refinery:changed", refreshApprovalCount);
route();
refreshApprovalCount();
setInterval(
  () => document.visibilityState === "visible" && !signingIn && refreshApprovalCount(),
  3000,
);
