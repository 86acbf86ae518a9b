// Human approval: when a refinement needs a reviewer, what the reviewer is shown, and what a
// reviewer may answer. Pure, so the server can validate a resume value before it reaches the
// graph (a malformed answer is a 422 and the thread stays interrupted).
import { createTwoFilesPatch } from "diff";
import { z } from "zod";
import type { Critique, StopReason } from "./state.ts";
import type { Verdict } from "./verifiers/types.ts";
import type { TokenUsage } from "./usage.ts";

export const ApprovalModeSchema = z.enum(["never", "final", "every_revision", "escalation"]);
export type ApprovalMode = z.infer<typeof ApprovalModeSchema>;

export const ApprovalOptionsSchema = z
  .object({
    mode: ApprovalModeSchema.describe(
      "final: before the final answer; every_revision: after every revised draft; escalation: only when a hard verifier still fails at a limit, the score is below scoreBelow, or the budget ran out.",
    ),
    scoreBelow: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("escalation: also escalate when the final score is below this."),
    deadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .optional()
      .describe("How long a reviewer has."),
    onExpiry: z
      .enum(["approve", "reject", "wait"])
      .optional()
      .describe("What happens when the deadline passes (default wait)."),
    webhook: z
      .object({ url: z.url({ protocol: /^https?$/ }), secret: z.string().min(8).optional() })
      .strict()
      .optional()
      .describe(
        "POSTed when an approval becomes pending, signed with HMAC-SHA256 (X-Refinery-Signature).",
      ),
  })
  .strict();
export type ApprovalOptions = z.infer<typeof ApprovalOptionsSchema>;

/** What a reviewer may answer (as `command.resume`, or via POST /threads/{id}/approval). */
export const ApprovalDecisionSchema = z.discriminatedUnion(
  "action",
  [
    z.object({ action: z.literal("approve"), comment: z.string().max(10_000).optional() }).strict(),
    z
      .object({
        action: z.literal("reject"),
        feedback: z
          .string({ error: "reject needs feedback: say what to change" })
          .trim()
          .min(1, "reject needs feedback: say what to change")
          .max(10_000),
      })
      .strict(),
    z
      .object({
        action: z.literal("edit"),
        text: z
          .string({ error: "edit needs text: the replacement draft" })
          .trim()
          .min(1, "edit needs text: the replacement draft")
          .max(200_000),
      })
      .strict(),
    z.object({ action: z.literal("abort"), reason: z.string().max(10_000).optional() }).strict(),
  ],
  {
    error: () =>
      'expected {"action": "approve" | "reject" | "edit" | "abort"} (reject needs "feedback", edit needs "text")',
  },
);
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;

/** Accepts the plain strings "approve" / "abort" as shorthand. */
export function normalizeDecision(value: unknown): unknown {
  if (value === "approve" || value === "abort") return { action: value };
  return value;
}

export interface ApprovalRequest {
  type: "approval";
  reason: string;
  iteration: number;
  draft: string;
  previousDraft: string | null;
  diff: string | null;
  critique: Pick<Critique, "verdict" | "score" | "issues"> | null;
  verdicts: Pick<Verdict, "verifierId" | "hard" | "pass" | "score" | "message">[];
  usage: TokenUsage;
  stopReason: StopReason | null;
  /** The offered draft's hard verifiers: how many pass, and the ids of those that fail. */
  hardChecks: { passed: number; total: number; failed: string[] };
  /** When the offered draft fails a hard check and an earlier one passed them all: that draft. */
  earlierPassing: { iteration: number; draft: string } | null;
  /** One plain sentence when the offered draft fails a hard check; null when it passes them all. */
  warning: string | null;
  /** ISO time after which the server applies `onExpiry`; absent when there is no deadline. */
  deadline?: string;
  onExpiry?: "approve" | "reject" | "wait";
  actions: ["approve", "reject", "edit", "abort"];
}

export function isApprovalRequest(value: unknown): value is ApprovalRequest {
  return (
    typeof value === "object" && value !== null && (value as { type?: unknown }).type === "approval"
  );
}

export interface ApprovalPoint {
  /** The loop wants to stop with this reason (null: it wants to continue to another revision). */
  stopReason: StopReason | null;
  iteration: number;
  hardPassed: number;
  hardTotal: number;
  score: number;
  /** True when a human already decided on this iteration (never ask twice for one draft). */
  decided: boolean;
}

/** Whether the loop must ask a reviewer now, and why; undefined when it need not. */
export function approvalReason(
  options: ApprovalOptions | undefined,
  p: ApprovalPoint,
): string | undefined {
  if (!options || options.mode === "never" || p.decided) return undefined;
  if (p.stopReason === "model_error") return undefined;
  if (options.mode === "final")
    return p.stopReason ? `final answer ready (${p.stopReason})` : undefined;
  if (options.mode === "every_revision") {
    if (p.iteration > 1) return `revision ${p.iteration} ready`;
    return p.stopReason ? `final answer ready (${p.stopReason})` : undefined;
  }
  // escalation
  if (!p.stopReason) return undefined;
  if (
    p.hardPassed < p.hardTotal &&
    (p.stopReason === "max_iterations" || p.stopReason === "unchanged")
  ) {
    return `escalation: ${p.hardTotal - p.hardPassed} hard verifier(s) still fail at ${p.stopReason}`;
  }
  if (p.stopReason === "token_budget") return "escalation: the token budget ran out";
  if (options.scoreBelow !== undefined && p.score < options.scoreBelow) {
    return `escalation: score ${p.score.toFixed(2)} is below ${options.scoreBelow}`;
  }
  return undefined;
}

export function unifiedDiff(before: string, after: string, iteration: number): string {
  // Both sides end with a newline so the diff has no "\ No newline at end of file" noise.
  const nl = (t: string) => (t.endsWith("\n") ? t : `${t}\n`);
  const patch = createTwoFilesPatch(
    `draft ${iteration - 1}`,
    `draft ${iteration}`,
    nl(before),
    nl(after),
    undefined,
    undefined,
    { context: 3 },
  );
  // Drop the "Index:/====" preamble: reviewers read the hunks.
  return patch.replace(/^=+\n/m, "").replace(/^Index:.*\n/m, "");
}
