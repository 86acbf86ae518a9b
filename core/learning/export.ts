// Training-data export formats, one JSONL line per example, built from stored run outcomes:
// SFT (task -> final approved answer), DPO preference pairs (final answer chosen over a worse
// earlier draft, with the reason) and PASR refinement traces
// (`<think> … <refine> … </refine> … </think><answer> … </answer>`). Pure functions.
import { hardCheckReport } from "../hard-checks.ts";
import { PASR_SYSTEM_PROMPT } from "../pasr.ts";
import type { OutcomeWithRatings, RunRating } from "../storage/sqlite/learning-records.ts";
import type { RunOutcome } from "./outcome.ts";

export const EXPORT_FORMATS = ["sft", "dpo", "pasr"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type Message = { role: "system" | "user" | "assistant"; content: string };

/** How a date filter (since, until) must be written, for error messages. */
export const ISO_DATE_HINT = "an ISO date or date-time, e.g. 2026-11-01 or 2026-11-01T12:00:00Z";

/** A date filter as the stored ISO timestamp, or undefined when it is not an ISO date (or date-time). */
export function isoDateFilter(text: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/**
 * A run's answer is fit to train on when it was verified or approved by a person, no reviewer
 * rejected it last, and no end user rated it below 0.5.
 */
export function isTrainable(o: OutcomeWithRatings): boolean {
  if (!o.answer) return false;
  if (!o.verified && !o.human_approved) return false;
  const last = o.approvals[o.approvals.length - 1];
  if (last && (last.action === "reject" || last.action === "abort")) return false;
  return !o.ratings.some((r) => r.score !== null && r.score < 0.5);
}

/** The examples one outcome contributes in a format (possibly none). */
export function examplesOf(format: ExportFormat, o: OutcomeWithRatings): Record<string, unknown>[] {
  if (!isTrainable(o)) return [];
  if (format === "sft") {
    return [
      {
        messages: [userMessage(o), { role: "assistant", content: o.answer! }],
        metadata: metadataOf(o),
      },
    ];
  }
  if (format === "dpo") return preferencePairs(o);
  return [
    {
      messages: [
        { role: "system", content: PASR_SYSTEM_PROMPT },
        userMessage(o),
        { role: "assistant", content: pasrTrace(o) },
      ],
      metadata: { ...metadataOf(o), refinements: pathTo(o).length - 1 },
    },
  ];
}

function preferencePairs(o: OutcomeWithRatings): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const seen = new Set<string>([o.answer!]);
  const finalHard = hardPassed(o, answerIteration(o));
  for (const d of o.drafts) {
    if (seen.has(d.text)) continue;
    seen.add(d.text);
    const reasons = reasonsAgainst(o, d.iteration);
    const worse =
      hardPassed(o, d.iteration) < finalHard ||
      o.approvals.some((a) => a.iteration === d.iteration && a.action !== "approve") ||
      o.critiques.some((c) => c.iteration === d.iteration && c.verdict === "revise");
    if (!worse || reasons.length === 0) continue;
    out.push({
      prompt: [userMessage(o)],
      chosen: [{ role: "assistant", content: o.answer! }],
      rejected: [{ role: "assistant", content: d.text }],
      reason: reasons.join(" "),
      metadata: { ...metadataOf(o), rejected_iteration: d.iteration },
    });
  }
  return out;
}

/** Why a draft was judged worse: failed hard checks, the critic's issues, a reviewer's words. */
function reasonsAgainst(o: RunOutcome, iteration: number): string[] {
  const reasons: string[] = [];
  for (const v of o.verdicts)
    if (v.iteration === iteration && v.hard && !v.pass)
      reasons.push(`Failed check ${v.verifier_id}: ${v.message}`.trim());
  for (const a of o.approvals)
    if (a.iteration === iteration && (a.action === "reject" || a.action === "edit"))
      reasons.push(
        `Reviewer ${a.action === "edit" ? "edited" : "rejected"} it${a.feedback ? `: ${a.feedback}` : ""}.`,
      );
  const c = o.critiques.find((x) => x.iteration === iteration);
  if (c?.verdict === "revise") for (const issue of c.issues) reasons.push(`Critique: ${issue}`);
  return reasons;
}

/** The drafts from the first to the final answer (later, worse drafts are left out). */
function pathTo(o: RunOutcome): RunOutcome["drafts"] {
  const end = o.drafts.findIndex((d) => d.iteration === answerIteration(o));
  return o.drafts.slice(0, end < 0 ? o.drafts.length : end + 1);
}

export function pasrTrace(o: RunOutcome): string {
  const path = pathTo(o);
  const parts: string[] = [path[0]!.text];
  for (let i = 1; i < path.length; i += 1) {
    const problems = reasonsAgainst(o, path[i - 1]!.iteration);
    const why = problems.length ? `${problems.join("\n")}\n` : "";
    parts.push(`<refine>\n${why}${path[i]!.text}\n</refine>`);
  }
  return `<think>\n${parts.join("\n")}\n</think>\n<answer>\n${o.answer}\n</answer>`;
}

function answerIteration(o: RunOutcome): number {
  return (
    o.drafts.findLast((d) => d.text === o.answer)?.iteration ??
    o.drafts[o.drafts.length - 1]?.iteration ??
    1
  );
}

function hardPassed(o: RunOutcome, iteration: number): number {
  return o.verdicts.filter((v) => v.iteration === iteration && v.hard && v.pass).length;
}

function userMessage(o: RunOutcome): Message {
  return { role: "user", content: o.context ? `${o.task}\n\n${o.context}` : o.task };
}

function metadataOf(o: OutcomeWithRatings): Record<string, unknown> {
  // An answer that fails a hard check says which, and which earlier draft passed them all.
  const checks = hardCheckReport(
    o.verdicts.map((v) => ({ ...v, id: v.verifier_id })),
    answerIteration(o),
  );
  return {
    run_id: o.run_id,
    thread_id: o.thread_id,
    graph_id: o.graph_id,
    assistant_id: o.assistant_id,
    finished_at: o.finished_at,
    stop_reason: o.stop_reason,
    strategy: o.strategy,
    verified: o.verified,
    human_approved: o.human_approved,
    ratings: o.ratings.map((r: RunRating) => ({ key: r.key, score: r.score, comment: r.comment })),
    ...(checks.failed.length
      ? { failed_hard_checks: checks.failed, earlier_passing_iteration: checks.earlierPassing }
      : {}),
    ...(o.simulated ? { simulated: true } : {}),
  };
}

/**
 * The verdict filter an export uses when the caller gives none: SFT trains on the answer itself,
 * so by default it leaves out answers that fail a hard check (`verdict=any` asks for them).
 */
export function defaultVerdict(format: ExportFormat): "verified" | "any" {
  return format === "sft" ? "verified" : "any";
}

/** JSONL lines of every example the matching outcomes contribute, produced a page at a time. */
export async function* exportJsonl(
  outcomes: AsyncIterable<OutcomeWithRatings>,
  format: ExportFormat,
): AsyncGenerator<string> {
  for await (const o of outcomes) {
    for (const example of examplesOf(format, o)) yield `${JSON.stringify(example)}\n`;
  }
}
