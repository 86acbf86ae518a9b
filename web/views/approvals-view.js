// The approval queue (GET /approvals): one card per thread waiting for a reviewer, oldest first,
// with enough of the request to triage it; "Review" opens the thread at its approval panel.
import { api, describeError } from "../lib/api.js";
import { h, mount } from "../lib/dom.js";
import { ago, dateTime, headline, shortId, tokens, until } from "../lib/format.js";
import { critiqueBadge, scoreMeter, verdictChip } from "../components/badges.js";

function approvalCard(p) {
  const r = p.request ?? {};
  const href = `#/threads/${encodeURIComponent(p.thread_id)}`;
  const titleId = `approval-${p.thread_id}`;
  return h(
    "li",
    {},
    h(
      "article",
      { class: "card approval-card", "aria-labelledby": titleId, "data-thread": p.thread_id },
      h(
        "header",
        { class: "row between gap wrap" },
        h(
          "h2",
          { id: titleId, class: "h3" },
          headline(p.task ?? `Thread ${shortId(p.thread_id)}`, 110),
        ),
        h(
          "a",
          {
            href,
            class: "btn primary small",
            "aria-label": `Review: ${headline(p.task ?? p.thread_id, 60)}`,
          },
          "Review",
        ),
      ),
      h("p", { class: "reason" }, r.reason ?? "approval requested"),
      r.warning ? h("p", { class: "check-warning small", "data-checks": "fail" }, r.warning) : null,
      h(
        "p",
        { class: "meta-line small" },
        h("span", {}, `iteration ${r.iteration ?? "?"}`),
        h("span", { title: dateTime(p.updated_at) }, `paused ${ago(p.updated_at)}`),
        h("span", {}, `${tokens(r.usage?.totalTokens)} tokens`),
        r.deadline
          ? h(
              "span",
              { class: "deadline", title: dateTime(r.deadline) },
              `deadline ${until(r.deadline)}`,
            )
          : null,
        h("span", { class: "mono" }, shortId(p.thread_id)),
      ),
      h(
        "div",
        { class: "row gap wrap" },
        critiqueBadge(r.critique),
        scoreMeter(r.critique?.score),
        (r.verdicts ?? []).length
          ? h(
              "ul",
              { class: "verdicts inline", "aria-label": "Verifier verdicts" },
              r.verdicts.map(verdictChip),
            )
          : null,
      ),
      h(
        "pre",
        { class: "draft-text excerpt", "aria-label": "Draft excerpt" },
        String(r.draft ?? "").slice(0, 400),
      ),
    ),
  );
}

export function approvalsView(main, { signal }) {
  document.title = "Approvals · Refinery";
  const list = h("div", {}, h("p", { class: "muted loading" }, "Loading the queue…"));
  mount(
    main,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Approvals"),
        h(
          "p",
          { class: "lede" },
          "Threads paused for a human decision, oldest first. Approve, reject with feedback, edit or abort from the thread page.",
        ),
      ),
    ),
    list,
  );
  const refresh = async () => {
    try {
      const pending = await api("/approvals", { signal });
      mount(
        list,
        pending.length
          ? h(
              "ol",
              { class: "approval-list", "aria-label": `${pending.length} pending approvals` },
              pending.map(approvalCard),
            )
          : h(
              "div",
              { class: "card empty" },
              h("p", { class: "empty-title" }, "Nothing is waiting for a reviewer."),
              h(
                "p",
                { class: "muted" },
                "A refine run asks for approval when its config sets approval.mode (final, every_revision or escalation).",
              ),
            ),
      );
    } catch (err) {
      if (signal.aborted) return;
      const d = describeError(err);
      mount(
        list,
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
