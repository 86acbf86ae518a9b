// The iteration timeline of a refine thread: every draft with its diff to the previous one, the
// critique, the verifiers' verdicts, tokens and timings, and what a reviewer decided.
import { h } from "../lib/dom.js";
import { lineDiff } from "../lib/diff.js";
import { dateTime, duration, tokens } from "../lib/format.js";
import { critiqueBadge, critiqueSummary, verdictList } from "./badges.js";
import { diffView } from "./diff-view.js";

const SOURCE_TEXT = { generate: "generated", revise: "revised", human: "edited by a reviewer" };
const ACTION_TEXT = {
  approve: "approved",
  reject: "rejected",
  edit: "replaced the draft",
  abort: "aborted",
  expired: "deadline expired",
};

function usageLine(label, usage, latencyMs) {
  if (!usage && latencyMs === undefined) return null;
  const parts = [];
  if (usage) {
    parts.push(h("strong", {}, `${tokens(usage.totalTokens)} tokens`));
    parts.push(` (${tokens(usage.promptTokens)} in · ${tokens(usage.completionTokens)} out`);
    parts.push(usage.calls > 1 ? ` · ${usage.calls} calls)` : ")");
  }
  if (typeof latencyMs === "number") parts.push(` · ${duration(latencyMs)}`);
  return h("p", { class: "usage small" }, h("span", { class: "usage-label" }, `${label}: `), parts);
}

/**
 * The critiques of one draft: usually one; under the proactive strategy a critique that named
 * nothing is followed by a second call asking the critic to point at the wrong part (`localize`).
 */
function critiqueSection(critiques, pending) {
  if (!critiques.length)
    return h(
      "section",
      { class: "critique" },
      h("h4", {}, "Critique"),
      h("p", { class: "muted small" }, pending ? "Pending…" : "Not critiqued."),
    );
  return h(
    "section",
    { class: "critique" },
    critiques.map((critique, i) => [
      i === 0
        ? h("h4", {}, "Critique")
        : h("h4", { class: "follow-up" }, "Follow-up: asked to point at the wrong part"),
      critiqueSummary(critique),
      usageLine(i === 0 ? "critique" : "follow-up", critique.usage, critique.latencyMs),
    ]),
  );
}

function approvalNote(a) {
  return h(
    "li",
    { class: ["decision", `action-${a.action}`] },
    h("span", { class: "who" }, "Reviewer "),
    h("strong", {}, ACTION_TEXT[a.action] ?? a.action),
    a.feedback ? h("q", {}, a.feedback) : null,
    h("time", { datetime: a.at, title: dateTime(a.at) }, ` · ${dateTime(a.at)}`),
  );
}

function iterationCard(draft, previous, values, { pending }) {
  const critiques = (values.critiques ?? []).filter((c) => c.iteration === draft.iteration);
  const critique = critiques[critiques.length - 1];
  const verdicts = (values.verdicts ?? []).filter((v) => v.iteration === draft.iteration);
  const approvals = (values.approvals ?? []).filter((a) => a.iteration === draft.iteration);
  const decisions = (values.decisions ?? []).filter((d) => d.iteration === draft.iteration);
  const best = values.best?.iteration === draft.iteration;
  const hard = verdicts.filter((v) => v.hard);
  const passed = hard.filter((v) => v.pass).length;
  const id = `iteration-${draft.iteration}`;
  const iterTokens =
    (draft.usage?.totalTokens ?? 0) +
    critiques.reduce((n, c) => n + (c.usage?.totalTokens ?? 0), 0);

  return h(
    "article",
    {
      class: ["iteration", best && "best"],
      id,
      "aria-labelledby": `${id}-title`,
      "data-iteration": draft.iteration,
    },
    h(
      "header",
      { class: "iteration-head" },
      h("span", { class: "iteration-num", "aria-hidden": "true" }, String(draft.iteration)),
      h(
        "div",
        { class: "iteration-title" },
        h("h3", { id: `${id}-title` }, `Iteration ${draft.iteration}`),
        h(
          "p",
          { class: "muted small" },
          `${SOURCE_TEXT[draft.source] ?? draft.source} · ${dateTime(draft.createdAt)} · ${tokens(iterTokens)} tokens`,
        ),
      ),
      h(
        "div",
        { class: "row gap wrap end" },
        best
          ? h(
              "span",
              { class: "badge tone-good", title: "The best draft so far: becomes the answer" },
              "best so far",
            )
          : null,
        hard.length
          ? h(
              "span",
              { class: ["badge", passed === hard.length ? "tone-good" : "tone-bad"] },
              `${passed}/${hard.length} hard checks pass`,
            )
          : null,
        critiqueBadge(critique),
      ),
    ),
    h(
      "div",
      { class: ["iteration-body", previous && "two-col"] },
      h(
        "section",
        { class: "draft" },
        h("h4", {}, "Draft"),
        h(
          "pre",
          { class: "draft-text", tabindex: 0, "aria-label": `Draft ${draft.iteration}` },
          draft.text,
        ),
        draft.source === "human" ? null : usageLine(draft.source, draft.usage, draft.latencyMs),
      ),
      previous
        ? h(
            "section",
            { class: "changes" },
            h("h4", {}, `Changes from draft ${previous.iteration}`),
            diffView(lineDiff(previous.text, draft.text), {
              label: `Draft ${previous.iteration} → ${draft.iteration}`,
            }),
          )
        : null,
    ),
    h(
      "div",
      { class: "iteration-foot" },
      critiqueSection(critiques, pending),
      h(
        "section",
        { class: "checks" },
        h("h4", {}, "Verifiers"),
        verdicts.length || !pending
          ? verdictList(verdicts)
          : h("p", { class: "muted small" }, "Pending…"),
      ),
    ),
    decisions.length
      ? h(
          "details",
          { class: "decisions small" },
          h("summary", {}, `Strategy decisions (${decisions.length})`),
          h(
            "ul",
            {},
            decisions.map((d) =>
              h("li", {}, h("strong", {}, `${d.node}: ${d.action}`), ` — ${d.reason}`),
            ),
          ),
        )
      : null,
    approvals.length ? h("ul", { class: "decisions-list" }, approvals.map(approvalNote)) : null,
  );
}

/** The whole timeline, oldest first; `activity` is a live line shown after the last card. */
export function timeline(values, { activity } = {}) {
  const drafts = values?.drafts ?? [];
  if (!drafts.length) {
    return h(
      "div",
      { class: "empty" },
      h("p", {}, activity ? "The first draft is being generated…" : "No drafts yet."),
      activity ? h("p", { class: "muted small" }, activity) : null,
    );
  }
  const cards = drafts.map((d, i) =>
    iterationCard(d, i > 0 ? drafts[i - 1] : null, values, {
      pending: Boolean(activity) && i === drafts.length - 1,
    }),
  );
  return h(
    "ol",
    { class: "timeline", "aria-label": "Iterations" },
    cards.map((c) => h("li", {}, c)),
    activity
      ? h(
          "li",
          { class: "activity", role: "status" },
          h("span", { class: "spinner", "aria-hidden": "true" }),
          activity,
        )
      : null,
  );
}
