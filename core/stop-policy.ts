// The stop policy and best-so-far selection: pure functions, so every branch of the loop can be
// unit-tested without a model. The graph's conditional edges only read what these decide.
import { actionableIssues } from "./critique-parse.ts";
import { isSoftDoubt, type SelfCheckResult } from "./self-check.ts";
import type { BestDraft, Critique, StopReason } from "./state.ts";
import type { Verdict } from "./verifiers/types.ts";

export interface Limits {
  /** Maximum number of drafts (the first generation counts as iteration 1). */
  maxIterations: number;
  /** Total tokens the run may spend, failed attempts included; undefined = no budget. */
  tokenBudget?: number;
  /** A draft whose hard verifiers pass is accepted once its score reaches this (0..1). */
  scoreThreshold: number;
}

export interface DraftAssessment {
  hardPassed: number;
  hardTotal: number;
  /** Mean of the soft signals (soft verifiers' scores, the critique's score); 1/0 by the hard result when none. */
  score: number;
  /** True when the critique found nothing to fix (or no critique ran). */
  critiqueClean: boolean;
  /**
   * The critique's issues that name something to repair (a value, a quoted part, a field); empty
   * when it found nothing, or only vague doubts such as "double-check the work".
   */
  actionable: string[];
}

export function assessDraft(verdicts: Verdict[], critique: Critique | undefined): DraftAssessment {
  const hard = verdicts.filter((v) => v.hard);
  const hardPassed = hard.filter((v) => v.pass).length;
  // Hard verifiers are gates, not quality: the score comes from the soft signals (soft verifiers
  // such as an LLM judge, and the critique), so a passing check cannot outvote a critic.
  const scores = verdicts.filter((v) => !v.hard).map((v) => v.score);
  if (critique?.score !== undefined) scores.push(critique.score);
  const allHard = hardPassed === hard.length;
  const score =
    scores.length > 0 ? scores.reduce((a, b) => a + b, 0) / scores.length : allHard ? 1 : 0;
  return {
    hardPassed,
    hardTotal: hard.length,
    score: clamp01(score),
    critiqueClean:
      critique === undefined || (critique.verdict === "pass" && critique.issues.length === 0),
    actionable: critique ? actionableIssues(critique.issues) : [],
  };
}

export type Decision =
  { action: "stop"; reason: StopReason } | { action: "revise"; reason: string };

export interface AfterVerifyInput {
  assessment: DraftAssessment;
  iteration: number;
  totalTokens: number;
  limits: Limits;
}

/**
 * A limit that ends the run before another iteration: the iteration cap, or the token budget.
 * The budget is enforced before the next iteration starts: when the average cost of the
 * iterations so far would take the run past its budget, it stops now rather than overspend.
 */
export function limitReached(
  iteration: number,
  totalTokens: number,
  limits: Limits,
): StopReason | undefined {
  if (limits.tokenBudget !== undefined) {
    const perIteration = iteration > 0 ? totalTokens / iteration : 0;
    if (totalTokens >= limits.tokenBudget || totalTokens + perIteration > limits.tokenBudget)
      return "token_budget";
  }
  if (iteration >= limits.maxIterations) return "max_iterations";
  return undefined;
}

function isAcceptable(a: DraftAssessment, limits: Limits): boolean {
  return a.hardPassed === a.hardTotal && (a.critiqueClean || a.score >= limits.scoreThreshold);
}

/**
 * After `verify` (self-refine): accept, stop on a limit, or revise. Acceptance is checked first,
 * so a draft that passes on the last allowed iteration is reported as accepted, not as capped.
 */
export function decideAfterVerify({
  assessment,
  iteration,
  totalTokens,
  limits,
}: AfterVerifyInput): Decision {
  if (isAcceptable(assessment, limits)) return { action: "stop", reason: "accepted" };
  const limit = limitReached(iteration, totalTokens, limits);
  if (limit) return { action: "stop", reason: limit };
  const failing = assessment.hardTotal - assessment.hardPassed;
  return {
    action: "revise",
    reason:
      failing > 0
        ? `${failing} hard verifier(s) failing`
        : "critique found issues below the score threshold",
  };
}

/** What the proactive strategy does next, and why (every taken or skipped refinement is recorded). */
export type ProactiveStep =
  | { action: "stop"; reason: StopReason; why: string }
  | { action: "critique"; why: string }
  | { action: "revise"; why: string };

/** What proactive does after a critique it asked for: `localize` asks the critic where. */
export type AfterCritiqueStep =
  | { action: "stop"; reason: StopReason; why: string }
  | { action: "localize"; why: string }
  | { action: "revise"; why: string };

export interface ProactiveInput {
  /** Assessment from the verifiers alone (no critique yet for this draft). */
  assessment: DraftAssessment;
  failing: string[];
  selfCheck: { doubtful: boolean; reasons: string[] };
  critiqueEnabled: boolean;
  iteration: number;
  totalTokens: number;
  limits: Limits;
}

/**
 * Proactive, after `verify`: deterministic verifiers decide first (they cost no tokens). A failing
 * hard check goes straight to a targeted revise; a passing draft is accepted unless the cheap
 * self-check finds it doubtful, and only then is the LLM critique worth its tokens.
 */
export function decideProactiveAfterVerify(input: ProactiveInput): ProactiveStep {
  const { assessment, failing, selfCheck, iteration, totalTokens, limits } = input;
  if (assessment.hardPassed < assessment.hardTotal) {
    const limit = limitReached(iteration, totalTokens, limits);
    if (limit)
      return {
        action: "stop",
        reason: limit,
        why: `hard verifier(s) ${failing.join(", ")} still fail but the ${limitName(limit)} is reached`,
      };
    return {
      action: "revise",
      why: `targeted revise: hard verifier(s) ${failing.join(", ")} failed`,
    };
  }
  if (selfCheck.doubtful && input.critiqueEnabled) {
    if (limits.tokenBudget !== undefined && totalTokens >= limits.tokenBudget) {
      return {
        action: "stop",
        reason: "token_budget",
        why: `self-check doubts the draft (${selfCheck.reasons.join("; ")}) but no budget is left for a critique`,
      };
    }
    return { action: "critique", why: `self-check: ${selfCheck.reasons.join("; ")}` };
  }
  const checks = assessment.hardTotal
    ? `all ${assessment.hardTotal} hard verifier(s) pass`
    : "no hard verifiers";
  return {
    action: "stop",
    reason: "accepted",
    why: `${checks} and the self-check found nothing doubtful: critique skipped`,
  };
}

/** What the proactive decision after a critique knows besides the assessment. */
export interface AfterCritiqueContext {
  /** The self-check of this draft, when known: a concrete defect it found is a target. */
  selfCheck?: SelfCheckResult;
  /** True when this critique is already the follow-up that asked the critic to localize. */
  localized?: boolean;
}

/**
 * Proactive, after a critique it asked for: accept, stop on a limit, localize, or revise what the
 * critic named. A targeted revise needs a target. When the draft passes its hard checks (at least
 * one) and the critique names nothing to repair (only vague doubts such as "double-check the
 * work"), revising would be a rewrite on a bare challenge, which is where models turn right answers
 * wrong. Instead the critic is asked once to point at the wrong part (`localize`): models correct
 * well once they know where the mistake is. If the follow-up names nothing either, or no revise
 * could follow it (a limit is reached), the draft is kept. Without any hard verifier to vouch for
 * the draft, a vague critique still leads to a revise; so does a defect the self-check found (a
 * slip, a contradiction), when the caller passes the draft's self-check.
 */
export function decideProactiveAfterCritique(
  assessment: DraftAssessment,
  iteration: number,
  totalTokens: number,
  limits: Limits,
  context: AfterCritiqueContext = {},
): AfterCritiqueStep {
  if (isAcceptable(assessment, limits))
    return { action: "stop", reason: "accepted", why: "the critique found nothing to fix" };
  const concrete = context.selfCheck?.reasons.filter((r) => !isSoftDoubt(r)) ?? [];
  const limit = limitReached(iteration, totalTokens, limits);
  if (
    assessment.hardTotal > 0 &&
    assessment.hardPassed === assessment.hardTotal &&
    assessment.actionable.length === 0 &&
    concrete.length === 0
  ) {
    if (context.localized)
      return {
        action: "stop",
        reason: "accepted",
        why: "asked to point at the wrong part, the critic named none, and every hard check passes: revise skipped",
      };
    if (limit)
      return {
        action: "stop",
        reason: "accepted",
        why: `the critique names no failing part (only vague doubts), every hard check passes and the ${limitName(limit)} leaves no revise: kept`,
      };
    return {
      action: "localize",
      why: "the critique names no failing part (only vague doubts) and every hard check passes: asking the critic to point at the wrong part before any revise",
    };
  }
  if (limit)
    return {
      action: "stop",
      reason: limit,
      why: "the critique found issues but a limit is reached",
    };
  return { action: "revise", why: "targeted revise: the critique named issues" };
}

function limitName(limit: StopReason): string {
  return limit === "token_budget" ? "token budget" : "iteration cap";
}

/** After `revise`: a revision identical to the draft it revised ends the loop (nothing will change). */
export function decideAfterRevise(previous: string, revised: string): Decision {
  return normalize(previous) === normalize(revised)
    ? { action: "stop", reason: "unchanged" }
    : { action: "revise", reason: "revision differs" };
}

/** A draft as a best-so-far candidate, scored by its assessment. */
export function asCandidate(
  draft: { iteration: number; text: string },
  assessment: Pick<DraftAssessment, "hardPassed" | "hardTotal" | "score">,
): BestDraft {
  return {
    iteration: draft.iteration,
    text: draft.text,
    hardPassed: assessment.hardPassed,
    hardTotal: assessment.hardTotal,
    score: assessment.score,
  };
}

/** Best-so-far: more hard verifiers passed wins, then the higher score; ties keep the incumbent. */
export function pickBest(current: BestDraft | null, candidate: BestDraft): BestDraft {
  if (!current) return candidate;
  if (candidate.hardPassed !== current.hardPassed) {
    return candidate.hardPassed > current.hardPassed ? candidate : current;
  }
  return candidate.score > current.score ? candidate : current;
}

function normalize(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function clamp01(n: number): number {
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
}
