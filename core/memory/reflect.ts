// The `reflect` step: distils a finished run into short reusable lessons — what went wrong and
// what fixed it — from the critiques and failed verdicts that preceded a revision that
// improved the draft, and from human rejections, edits and live feedback. Deterministic and
// free (no model call), so learning never costs tokens; a run that passed at once teaches nothing.
// Texts are kept short: every word of a lesson is paid for again in each prompt that carries it.
import { actionableIssues } from "../critique-parse.ts";
import type { RunOutcome } from "../learning/outcome.ts";
import type { LessonSource } from "./lessons.ts";
import { LESSON_TEXT_MAX } from "./lessons.ts";

export interface DistilledLesson {
  text: string;
  source: LessonSource;
  iteration: number;
}

export interface ReflectOptions {
  /** Lessons taken from one run at most. */
  maxPerRun?: number;
}

/** What to remember from a run, most telling first (human, then verifiers, then the critic). */
export function reflect(outcome: RunOutcome, options: ReflectOptions = {}): DistilledLesson[] {
  const max = options.maxPerRun ?? 3;
  const out: DistilledLesson[] = [];
  const seen = new Set<string>();
  const add = (text: string, source: LessonSource, iteration: number) => {
    const t = clip(text.replace(/\s+/g, " ").trim());
    const key = t.toLowerCase();
    if (!t || seen.has(key)) return;
    seen.add(key);
    out.push({ text: t, source, iteration });
  };

  // People are the strongest signal: what a reviewer asked for when rejecting or editing, and
  // live feedback given during the run.
  for (const a of outcome.approvals) {
    if ((a.action === "reject" || a.action === "edit") && a.feedback)
      add(`A reviewer required: ${a.feedback}`, "human", a.iteration);
  }
  for (const f of outcome.feedback) add(`A user asked: ${f}`, "feedback", 0);

  // A hard verifier that failed on a draft and passed on a later one: the fix worked.
  const byIteration = groupBy(outcome.verdicts, (v) => v.iteration);
  const iterations = [...new Set(outcome.drafts.map((d) => d.iteration))].sort((a, b) => a - b);
  for (let i = 0; i < iterations.length - 1; i += 1) {
    const it = iterations[i]!;
    const later = iterations.slice(i + 1).flatMap((j) => byIteration.get(j) ?? []);
    for (const v of byIteration.get(it) ?? []) {
      if (v.pass || !v.hard) continue;
      if (!later.some((w) => w.verifier_id === v.verifier_id && w.pass)) continue;
      add(`Check "${v.verifier_id}": ${generalizeCheck(v.message)}`, "verifier", it);
    }
  }

  // Critique issues raised on a draft whose revision improved (more hard checks passed, a
  // higher critic score, or the critic then passed it).
  for (let i = 0; i < iterations.length - 1; i += 1) {
    const it = iterations[i]!;
    const next = iterations[i + 1]!;
    const critique = outcome.critiques.find((c) => c.iteration === it);
    if (!critique || critique.verdict !== "revise" || critique.issues.length === 0) continue;
    if (!improved(outcome, it, next)) continue;
    // Only issues that name something ("step 2", a field, a quoted phrase): "double-check the
    // work" is no lesson, and would cost tokens in every prompt that carries it.
    for (const issue of actionableIssues(critique.issues).slice(0, 2))
      add(generalize(issue), "critique", it);
  }
  return out.slice(0, max);
}

function improved(o: RunOutcome, before: number, after: number): boolean {
  const hardPassed = (it: number) =>
    o.verdicts.filter((v) => v.iteration === it && v.hard && v.pass).length;
  if (hardPassed(after) > hardPassed(before)) return true;
  if (hardPassed(after) < hardPassed(before)) return false;
  const cb = o.critiques.find((c) => c.iteration === before);
  const ca = o.critiques.find((c) => c.iteration === after);
  if (ca?.verdict === "pass") return true;
  return cb?.score !== undefined && ca?.score !== undefined && ca.score > cb.score;
}

/** Drops long quoted draft excerpts so the lesson reads as a rule, not a case. */
function generalize(message: string): string {
  return message
    .replace(/"[^"]{40,}"/g, "the quoted text")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * A failed check's message as a rule. Listed problems ("- /priority must be one of …") stand on
 * one line without their counting header, each once, and without the value the draft happened to
 * hold ("(got null)"): the check's id already says which check it was, and every word is paid
 * for again in each prompt that carries the lesson.
 */
function generalizeCheck(message: string): string {
  const items = message
    .split("\n")
    .filter((line) => /^\s*- /.test(line))
    .map((line) => withoutGot(line.replace(/^\s*- /, "")));
  return generalize(items.length ? [...new Set(items)].join("; ") : withoutGot(message));
}

function withoutGot(line: string): string {
  return line.replace(/\s*\(got [^\n]*\)\s*$/, "");
}

function clip(text: string): string {
  const max = Math.min(LESSON_TEXT_MAX, 240);
  return text.length <= max ? text : `${text.slice(0, max - 1).trimEnd()}…`;
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = m.get(k);
    if (list) list.push(item);
    else m.set(k, [item]);
  }
  return m;
}
