// The home page: threads by status (tabs with counts, a table refreshed every few seconds), a
// form that starts a refinement, and the head of the approval queue.
import { api, describeError } from "../lib/api.js";
import { h, mount } from "../lib/dom.js";
import { ago, dateTime, headline, shortId, tokens } from "../lib/format.js";
import { approvalBadge, simulatedBadge, statusBadge, stopBadge } from "../components/badges.js";
import { newRunForm } from "../components/new-run-form.js";

const TABS = [
  { status: "", label: "All" },
  { status: "busy", label: "Busy" },
  { status: "interrupted", label: "Interrupted" },
  { status: "idle", label: "Idle" },
  { status: "error", label: "Error" },
];

function threadRow(t) {
  const v = t.values ?? {};
  const awaiting = Object.values(t.interrupts ?? {})
    .flat()
    .some((i) => i?.value?.type === "approval");
  const href = `#/threads/${encodeURIComponent(t.thread_id)}`;
  const task =
    typeof v.task === "string" && v.task ? headline(v.task, 90) : `Thread ${shortId(t.thread_id)}`;
  return h(
    "tr",
    { "data-thread": t.thread_id },
    h(
      "th",
      { scope: "row", class: "task-cell" },
      h("a", { href }, task),
      h("span", { class: "muted mono tiny" }, shortId(t.thread_id)),
    ),
    h(
      "td",
      {},
      h("div", { class: "row gap wrap" }, statusBadge(t.status), awaiting ? approvalBadge() : null),
    ),
    h("td", { class: "num" }, Array.isArray(v.drafts) ? String(v.drafts.length) : "–"),
    h("td", { class: "num" }, v.usage ? tokens(v.usage.totalTokens) : "–"),
    h(
      "td",
      {},
      h("div", { class: "row gap wrap" }, stopBadge(v.stopReason), simulatedBadge(v.simulated)),
    ),
    h(
      "td",
      { class: "nowrap" },
      h("time", { datetime: t.updated_at, title: dateTime(t.updated_at) }, ago(t.updated_at)),
    ),
  );
}

export function threadsView(main, { query, signal }) {
  const status = TABS.some((t) => t.status === query.get("status")) ? query.get("status") : "";
  document.title = "Threads · Refinery";

  const tabs = h("nav", { class: "tabs", "aria-label": "Filter threads by status" });
  const table = h(
    "div",
    { class: "table-wrap", "aria-live": "off" },
    h("p", { class: "muted loading" }, "Loading threads…"),
  );
  const queue = h("div", {}, h("p", { class: "muted small" }, "Loading…"));

  mount(
    main,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Threads"),
        h("p", { class: "lede" }, "Every refinement the server ran or is running, newest first."),
      ),
    ),
    h(
      "div",
      { class: "layout" },
      h(
        "section",
        { class: "main-col", "aria-label": "Threads" },
        tabs,
        h("div", { class: "card flush" }, table),
      ),
      h(
        "aside",
        { class: "side-col" },
        h(
          "section",
          { class: "card", "aria-labelledby": "queue-title" },
          h("h2", { id: "queue-title" }, "Waiting for review"),
          queue,
        ),
        newRunForm(),
      ),
    ),
  );

  const refresh = async () => {
    try {
      const counts = await Promise.all(
        TABS.map((t) =>
          api("/threads/count", {
            method: "POST",
            body: t.status ? { status: t.status } : {},
            signal,
          }),
        ),
      );
      mount(
        tabs,
        TABS.map((t, i) =>
          h(
            "a",
            {
              href: t.status ? `#/?status=${t.status}` : "#/",
              class: ["tab", t.status && `tab-${t.status}`],
              "aria-current": t.status === status ? "page" : undefined,
            },
            t.label,
            h("span", { class: "tab-count" }, String(counts[i] ?? 0)),
          ),
        ),
      );
      const threads = await api("/threads/search", {
        method: "POST",
        body: {
          ...(status ? { status } : {}),
          limit: 100,
          sort_by: "updated_at",
          sort_order: "desc",
        },
        signal,
      });
      if (!threads.length) {
        mount(
          table,
          h(
            "div",
            { class: "empty" },
            h("p", { class: "empty-title" }, status ? `No ${status} threads.` : "No threads yet."),
            h(
              "p",
              { class: "muted" },
              status
                ? "Threads appear here when their status changes."
                : "Start a refinement with the form, the CLI (npx refinery run) or the LangGraph SDK.",
            ),
          ),
        );
      } else {
        mount(
          table,
          h(
            "table",
            { class: "threads" },
            h(
              "caption",
              { class: "visually-hidden" },
              `${threads.length} ${status || "all"} threads`,
            ),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Task"),
                h("th", { scope: "col" }, "Status"),
                h("th", { scope: "col", class: "num" }, "Drafts"),
                h("th", { scope: "col", class: "num" }, "Tokens"),
                h("th", { scope: "col" }, "Outcome"),
                h("th", { scope: "col" }, "Updated"),
              ),
            ),
            h("tbody", {}, threads.map(threadRow)),
          ),
        );
      }
      const pending = await api("/approvals", { signal });
      mount(
        queue,
        pending.length
          ? [
              h(
                "ul",
                { class: "mini-list" },
                pending
                  .slice(0, 5)
                  .map((p) =>
                    h(
                      "li",
                      {},
                      h(
                        "a",
                        { href: `#/threads/${encodeURIComponent(p.thread_id)}` },
                        headline(p.task ?? shortId(p.thread_id), 70),
                      ),
                      h(
                        "span",
                        { class: "muted small" },
                        `${p.request?.reason ?? ""} · ${ago(p.updated_at)}`,
                      ),
                    ),
                  ),
              ),
              h("a", { href: "#/approvals", class: "small" }, `All ${pending.length} pending →`),
            ]
          : h("p", { class: "muted small" }, "Nothing is waiting for a reviewer."),
      );
    } catch (err) {
      if (signal.aborted) return;
      const d = describeError(err);
      mount(
        table,
        h(
          "div",
          { class: "error-box", role: "alert" },
          h("strong", {}, d.title),
          d.fix ? h("p", {}, d.fix) : null,
        ),
      );
    }
  };

  refresh();
  const timer = setInterval(() => document.visibilityState === "visible" && refresh(), 3000);
  return () => clearInterval(timer);
}
