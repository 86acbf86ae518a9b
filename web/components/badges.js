// Small labelled chips: thread status, stop reason, verifier verdicts, the simulated-model label.
// Every chip says its meaning in words, never by colour alone.
import { h } from "../lib/dom.js";
import { checksSentence } from "../lib/checks.js";
import { STATUS_HELP, STATUS_TEXT, STOP_HELP, STOP_TEXT, score } from "../lib/format.js";

export function statusBadge(status) {
  const s = STATUS_TEXT[status] ? status : "unknown";
  return h(
    "span",
    { class: ["badge", `status-${s}`], title: STATUS_HELP[s] ?? "", "data-status": s },
    h("span", { class: "dot", "aria-hidden": "true" }),
    STATUS_TEXT[s] ?? String(status),
  );
}

/**
 * @param {string|null} stopReason
 * @param {{failed: string[]}|null} [checks] the answer's hard checks: an answer that fails one is
 *   never shown in the "good" tone, whatever stopped the run.
 */
export function stopBadge(stopReason, checks = null) {
  if (!stopReason) return null;
  const failing = Boolean(checks?.failed?.length);
  const tone =
    (stopReason === "accepted" || stopReason === "approved") && !failing
      ? "good"
      : stopReason === "model_error" || stopReason === "aborted"
        ? "bad"
        : stopReason === "single_pass"
          ? "neutral"
          : "warn";
  return h(
    "span",
    {
      class: ["badge", "stop", `tone-${tone}`],
      title: `${STOP_HELP[stopReason] ?? ""}${failing ? " (the answer fails a hard check)" : ""}`,
      "data-stop": stopReason,
    },
    `stop: ${STOP_TEXT[stopReason] ?? stopReason}`,
  );
}

/** Whether an answer passes its hard checks, in words (and which earlier draft passed). */
export function checksNote(report) {
  if (!report) return null;
  const state = !report.total ? "none" : report.failed.length ? "fail" : "pass";
  return h(
    "p",
    { class: ["answer-checks", `checks-${state}`], "data-checks": state },
    h(
      "span",
      { class: "mark", "aria-hidden": "true" },
      state === "fail" ? "✗" : state === "pass" ? "✓" : "–",
    ),
    checksSentence(report),
  );
}

export function simulatedBadge(simulated) {
  if (!simulated) return null;
  return h(
    "span",
    {
      class: "badge simulated",
      title:
        "Produced by the offline simulated model (no API key): for demos and tests, not a language model",
    },
    "simulated model",
  );
}

export function approvalBadge() {
  return h(
    "span",
    { class: "badge awaiting", title: "A reviewer must approve, reject, edit or abort" },
    "awaiting approval",
  );
}

export function verdictChip(v) {
  const pass = Boolean(v.pass);
  return h(
    "li",
    { class: ["chip", pass ? "pass" : "fail", !v.hard && "soft"], title: v.message ?? "" },
    h("span", { class: "mark", "aria-hidden": "true" }, pass ? "✓" : "✗"),
    h("span", { class: "visually-hidden" }, pass ? "passed: " : "failed: "),
    h("span", { class: "name" }, v.verifierId ?? v.kind ?? "verifier"),
    v.hard ? null : h("span", { class: "tag" }, "soft"),
    typeof v.score === "number" && v.score !== (pass ? 1 : 0)
      ? h("span", { class: "score" }, score(v.score))
      : null,
  );
}

/** A list of verdict chips with each verifier's message under it. */
export function verdictList(verdicts, { messages = true } = {}) {
  if (!verdicts?.length) return h("p", { class: "muted small" }, "No verifier ran on this draft.");
  return h(
    "ul",
    { class: "verdicts", "aria-label": "Verifier verdicts" },
    verdicts.map((v) => {
      const chip = verdictChip(v);
      if (messages && v.message) chip.append(h("span", { class: "message" }, v.message));
      return chip;
    }),
  );
}

export function critiqueBadge(critique) {
  if (!critique) return null;
  const pass = critique.verdict === "pass";
  return h(
    "span",
    {
      class: ["badge", pass ? "tone-good" : "tone-warn"],
      title: pass ? "The critic found nothing to fix" : "The critic asked for a revision",
    },
    pass ? "critique: pass" : "critique: revise",
  );
}

/** A 0..1 score as a labelled bar. */
export function scoreMeter(value, label = "score") {
  if (typeof value !== "number") return null;
  return h(
    "span",
    { class: "meter-wrap" },
    h("span", { class: "meter-label" }, `${label} ${score(value)}`),
    h("meter", {
      min: 0,
      max: 1,
      low: 0.5,
      high: 0.8,
      optimum: 1,
      value,
      "aria-label": `${label} ${score(value)} of 1`,
    }),
  );
}

/** A critique's verdict, score and issues: the same body wherever a critique is shown. */
export function critiqueSummary(critique) {
  return [
    h("div", { class: "row gap" }, critiqueBadge(critique), scoreMeter(critique.score)),
    critique.issues?.length
      ? h(
          "ul",
          { class: "issues" },
          critique.issues.map((issue) => h("li", {}, issue)),
        )
      : h("p", { class: "muted small" }, "No issues raised."),
  ];
}
