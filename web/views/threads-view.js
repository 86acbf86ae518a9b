// The home page: threads by status (tabs with counts, a table refreshed every few seconds) with
// search, filters (graph, assistant, updated since) and paging, a form that starts a refinement,
// and the head of the approval queue. Filters and page live in the URL (#/?status=…&page=2).
import { api, describeError } from "../lib/api.js";
import { h, mount } from "../lib/dom.js";
import { ago, dateTime, headline, shortId, tokens } from "../lib/format.js";
import { approvalBadge, simulatedBadge, statusBadge, stopBadge } from "../components/badges.js";
import { newRunForm } from "../components/new-run-form.js";
import { answerChecks } from "../lib/checks.js";

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
      h(
        "div",
        { class: "row gap wrap" },
        stopBadge(v.stopReason, t.status === "busy" ? null : answerChecks(v)),
        simulatedBadge(v.simulated),
      ),
    ),
    h(
      "td",
      { class: "nowrap" },
      h("time", { datetime: t.updated_at, title: dateTime(t.updated_at) }, ago(t.updated_at)),
    ),
  );
}

const PAGE_SIZE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The list's filters, read from the URL; unknown or malformed values are ignored. */
function readFilters(query) {
  const status = TABS.some((t) => t.status === query.get("status")) ? query.get("status") : "";
  const since = DAY.test(query.get("since") ?? "") ? query.get("since") : "";
  const page = Math.max(1, Number.parseInt(query.get("page") ?? "1", 10) || 1);
  return {
    status,
    graph: (query.get("graph") ?? "").trim(),
    assistant: (query.get("assistant") ?? "").trim(),
    since,
    q: (query.get("q") ?? "").trim(),
    page,
  };
}

function hrefFor(f, changes = {}) {
  const next = { ...f, page: 1, ...changes };
  const params = new URLSearchParams();
  for (const key of ["status", "graph", "assistant", "since", "q"])
    if (next[key]) params.set(key, next[key]);
  if (next.page > 1) params.set("page", String(next.page));
  const text = params.toString();
  return text ? `#/?${text}` : "#/";
}

/** POST /threads/search and /threads/count filters: graph and assistant are thread metadata. */
function searchFilters(f) {
  const metadata = {};
  if (f.graph) metadata.graph_id = f.graph;
  if (f.assistant) metadata.assistant_id = f.assistant;
  const out = {};
  if (Object.keys(metadata).length) out.metadata = metadata;
  // A thread id finds that thread; other text is matched against the task, exactly.
  if (f.q && UUID.test(f.q)) out.ids = [f.q.toLowerCase()];
  else if (f.q) out.values = { task: f.q };
  return out;
}

function filterForm(f, graphs, assistants) {
  const option = (value, label, selected) => h("option", { value, selected }, label);
  return h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Find threads",
      onsubmit: (e) => {
        e.preventDefault();
        const fd = new FormData(e.currentTarget);
        location.hash = hrefFor(f, {
          q: String(fd.get("q") ?? "").trim(),
          graph: String(fd.get("graph") ?? ""),
          assistant: String(fd.get("assistant") ?? ""),
          since: String(fd.get("since") ?? ""),
        });
      },
    },
    h(
      "div",
      { class: "field grow" },
      h("label", { for: "filter-q" }, "Search"),
      h("input", {
        id: "filter-q",
        name: "q",
        type: "search",
        value: f.q,
        placeholder: "thread id or the exact task",
        "aria-describedby": "filter-q-help",
      }),
      h("p", { id: "filter-q-help", class: "help" }, "A full thread id, or a task word for word."),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-graph" }, "Graph"),
      h(
        "select",
        { id: "filter-graph", name: "graph" },
        option("", "any graph", !f.graph),
        [...new Set([...graphs, ...(f.graph ? [f.graph] : [])])].map((g) =>
          option(g, g, g === f.graph),
        ),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-assistant" }, "Assistant"),
      h(
        "select",
        { id: "filter-assistant", name: "assistant" },
        option("", "any assistant", !f.assistant),
        assistants.map((a) =>
          option(
            a.assistant_id,
            a.name && a.name !== a.graph_id ? `${a.name} (${a.graph_id})` : a.graph_id,
            a.assistant_id === f.assistant,
          ),
        ),
        f.assistant && !assistants.some((a) => a.assistant_id === f.assistant)
          ? option(f.assistant, shortId(f.assistant), true)
          : null,
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-since" }, "Updated since"),
      h("input", { id: "filter-since", name: "since", type: "date", value: f.since }),
    ),
    h(
      "div",
      { class: "row gap filter-actions" },
      h("button", { type: "submit", class: "btn primary small" }, "Apply"),
      f.q || f.graph || f.assistant || f.since
        ? h("a", { class: "btn ghost small", href: hrefFor({ status: f.status }) }, "Clear")
        : null,
    ),
  );
}

export function threadsView(main, { query, signal }) {
  const f = readFilters(query);
  const status = f.status;
  document.title = "Threads · Refinery";

  const tabs = h("nav", { class: "tabs", "aria-label": "Filter threads by status" });
  const filters = h("div", { class: "filters-slot" }, filterForm(f, [], []));
  const table = h(
    "div",
    { class: "table-wrap", "aria-live": "off" },
    h("p", { class: "muted loading" }, "Loading threads…"),
  );
  const pager = h("nav", { class: "pager", "aria-label": "Pages", hidden: true });
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
        filters,
        tabs,
        h("div", { class: "card flush" }, table),
        pager,
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

  // The choices for the graph and assistant filters, once (the form keeps what was typed).
  (async () => {
    try {
      const [info, assistants] = await Promise.all([
        api("/info", { signal }),
        api("/assistants/search", { method: "POST", body: { limit: 100 }, signal }),
      ]);
      if (signal.aborted) return;
      mount(filters, filterForm(f, info?.graphs ?? [], assistants ?? []));
    } catch {
      // The filters still work with typed-in values; the table reports a broken server.
    }
  })();

  const where = searchFilters(f);
  const refresh = async () => {
    try {
      const countBody = {
        ...(where.metadata ? { metadata: where.metadata } : {}),
        ...(where.values ? { values: where.values } : {}),
      };
      const counts = where.ids
        ? null
        : await Promise.all(
            TABS.map((t) =>
              api("/threads/count", {
                method: "POST",
                body: t.status ? { ...countBody, status: t.status } : countBody,
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
              href: hrefFor(f, { status: t.status }),
              class: ["tab", t.status && `tab-${t.status}`],
              "aria-current": t.status === status ? "page" : undefined,
            },
            t.label,
            counts ? h("span", { class: "tab-count" }, String(counts[i] ?? 0)) : null,
          ),
        ),
      );
      const offset = (f.page - 1) * PAGE_SIZE;
      const page = await api("/threads/search", {
        method: "POST",
        body: {
          ...where,
          ...(status ? { status } : {}),
          // One more than a page says whether there is a next one.
          limit: PAGE_SIZE + 1,
          offset,
          sort_by: "updated_at",
          sort_order: "desc",
        },
        signal,
      });
      let more = page.length > PAGE_SIZE;
      let threads = page.slice(0, PAGE_SIZE);
      if (f.since) {
        // Newest first: the first thread updated before the day ends the list.
        const from = new Date(`${f.since}T00:00:00`).getTime();
        const kept = threads.filter((t) => new Date(t.updated_at).getTime() >= from);
        if (kept.length < threads.length) more = false;
        threads = kept;
      }
      const total = counts ? counts[TABS.findIndex((t) => t.status === status)] : null;
      renderPager(offset, threads.length, more, f.since ? null : total);
      const filtered = Boolean(f.q || f.graph || f.assistant || f.since);
      if (!threads.length) {
        mount(
          table,
          h(
            "div",
            { class: "empty" },
            h(
              "p",
              { class: "empty-title" },
              filtered
                ? "No thread matches these filters."
                : status
                  ? `No ${status} threads.`
                  : "No threads yet.",
            ),
            h(
              "p",
              { class: "muted" },
              filtered
                ? "Change or clear the filters."
                : status
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
      await refreshQueue();
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

  function renderPager(offset, shown, more, total) {
    pager.hidden = f.page === 1 && !more;
    if (pager.hidden) return;
    mount(
      pager,
      f.page > 1
        ? h(
            "a",
            { class: "btn small", href: hrefFor(f, { page: f.page - 1 }), rel: "prev" },
            "← Newer",
          )
        : null,
      h(
        "span",
        { class: "muted small", "data-range": `${offset + 1}-${offset + shown}` },
        shown
          ? `${offset + 1}–${offset + shown}${total !== null ? ` of ${total}` : ""}`
          : "Nothing on this page",
      ),
      more
        ? h(
            "a",
            { class: "btn small", href: hrefFor(f, { page: f.page + 1 }), rel: "next" },
            "Older →",
          )
        : null,
    );
  }

  const refreshQueue = async () => {
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
  };

  refresh();
  const timer = setInterval(() => document.visibilityState === "visible" && refresh(), 3000);
  return () => clearInterval(timer);
}
