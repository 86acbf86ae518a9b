// The verifier contract: a check that reads a draft and returns pass/fail, a score and a
// message the reviser can act on. Deterministic verifiers run before model-backed ones.
import type { TokenUsage } from "../usage.ts";

export type VerifierKind =
  | "json_schema"
  | "regex"
  | "answer_match"
  | "constraints"
  | "arithmetic_steps"
  | "llm_judge"
  | "webhook";

export interface VerifyContext {
  task: string;
  context?: string;
  iteration: number;
  signal?: AbortSignal;
}

export interface VerifierResult {
  pass: boolean;
  /** 0..1; deterministic verifiers report 1 on pass and a partial score where it means something. */
  score: number;
  /** Specific, actionable text: what failed and where. Fed to `revise` when the check fails. */
  message: string;
  /** Tokens spent by model-backed verifiers (all attempts). */
  usage?: TokenUsage;
}

export interface Verifier {
  id: string;
  kind: VerifierKind;
  /** A hard verifier must pass for a draft to be accepted; a soft one only contributes its score. */
  hard: boolean;
  /** Deterministic verifiers cost no tokens and run first. */
  deterministic: boolean;
  verify(draft: string, ctx: VerifyContext): Promise<VerifierResult>;
}

/** A verifier's result as stored in the run's state. */
export interface Verdict extends VerifierResult {
  verifierId: string;
  kind: VerifierKind;
  hard: boolean;
  iteration: number;
  latencyMs: number;
}
