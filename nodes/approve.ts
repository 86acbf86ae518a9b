// The `approve` node: pauses the run for a reviewer (LangGraph `interrupt`) with everything a
// reviewer needs — candidate answer, previous draft and a diff, critique, verdicts, iteration,
// tokens — then applies the decision: approve (finish with this answer), reject with feedback
// (the feedback goes to revise and the loop continues), edit (the reviewer's text becomes the
// draft and is verified again) or abort.
import type { RunnableConfig } from "@langchain/core/runnables";
import { interrupt } from "@langchain/langgraph";
import {
  ApprovalDecisionSchema,
  normalizeDecision,
  unifiedDiff,
  type ApprovalRequest,
} from "../core/approval.ts";
import { fromZodError } from "../core/errors.ts";
import { hardCheckReport, hardCheckWarning } from "../core/hard-checks.ts";
import type { SettingsResolver } from "../core/settings.ts";
import {
  critiqueFor,
  latestDraft,
  verdictsFor,
  type ApprovalRecord,
  type Draft,
  type RefineStateType,
  type RefineUpdate,
} from "../core/state.ts";
import { totalsOnly, ZERO_USAGE } from "../core/usage.ts";

export interface ApproveNodeOptions {
  settings: SettingsResolver;
  /** Injected clock, for deadlines. */
  now?: () => Date;
}

export function createApproveNode({ settings, now = () => new Date() }: ApproveNodeOptions) {
  return function approve(state: RefineStateType, config: RunnableConfig): RefineUpdate {
    const s = settings(config, state.options);
    const latest = latestDraft(state);
    if (!latest) return { route: null };
    const pending = state.pendingApproval;
    const stopping = (pending?.stop ?? null) !== null;
    // When the loop wants to stop, the candidate is the best-so-far; mid-loop it is the newest draft.
    const candidate = stopping && state.best ? state.best.text : latest.text;
    const candidateIteration = stopping && state.best ? state.best.iteration : latest.iteration;
    const previous = state.drafts.find((d) => d.iteration === candidateIteration - 1) ?? null;
    const critique = critiqueFor(state, candidateIteration);
    const deadlineSeconds = s.approval?.deadlineSeconds;
    // Say plainly when the answer offered fails a hard check that an earlier draft passed (a
    // reject discards the best-so-far, so revisions that fail can be offered after a right draft).
    const checks = hardCheckReport(
      state.verdicts.map((v) => ({ ...v, id: v.verifierId })),
      candidateIteration,
    );
    const earlier =
      checks.earlierPassing === null
        ? undefined
        : state.drafts.findLast((d) => d.iteration === checks.earlierPassing);
    const request: ApprovalRequest = {
      type: "approval",
      reason: pending?.reason ?? "review requested",
      iteration: candidateIteration,
      draft: candidate,
      previousDraft: previous?.text ?? null,
      diff: previous ? unifiedDiff(previous.text, candidate, candidateIteration) : null,
      critique: critique
        ? { verdict: critique.verdict, score: critique.score, issues: critique.issues }
        : null,
      verdicts: verdictsFor(state, candidateIteration).map(
        ({ verifierId, hard, pass, score, message }) => ({
          verifierId,
          hard,
          pass,
          score,
          message,
        }),
      ),
      usage: totalsOnly(state.usage ?? ZERO_USAGE),
      stopReason: pending?.stop ?? null,
      hardChecks: { passed: checks.passed, total: checks.total, failed: checks.failed },
      earlierPassing: earlier ? { iteration: earlier.iteration, draft: earlier.text } : null,
      warning: hardCheckWarning(checks),
      ...(deadlineSeconds
        ? {
            deadline: new Date(now().getTime() + deadlineSeconds * 1000).toISOString(),
            onExpiry: s.approval?.onExpiry ?? "wait",
          }
        : {}),
      actions: ["approve", "reject", "edit", "abort"],
    };
    const raw = interrupt(request);
    const parsed = ApprovalDecisionSchema.safeParse(normalizeDecision(raw));
    if (!parsed.success) throw fromZodError(parsed.error, "command.resume");
    const decision = parsed.data;
    const expired =
      typeof raw === "object" && raw !== null && (raw as { expired?: unknown }).expired === true;
    const at = now().toISOString();
    const record = (
      action: ApprovalRecord["action"],
      extra: Partial<ApprovalRecord> = {},
      iteration = latest.iteration,
    ): ApprovalRecord => ({
      iteration,
      action: expired ? "expired" : action,
      reason: expired ? `deadline passed: ${action}` : request.reason,
      at,
      ...extra,
    });
    const clear = { pendingApproval: null } as const;
    switch (decision.action) {
      case "approve":
        return {
          ...clear,
          approvals: record("approve", decision.comment ? { feedback: decision.comment } : {}),
          stopReason: "approved",
          answer: candidate,
          route: null,
        };
      case "abort":
        return {
          ...clear,
          approvals: record("abort", decision.reason ? { feedback: decision.reason } : {}),
          stopReason: "aborted",
          answer: state.best?.text ?? latest.text,
          route: null,
        };
      case "reject":
        return {
          ...clear,
          approvals: record("reject", { feedback: decision.feedback }),
          feedback: { text: decision.feedback, source: "human", at },
          // A draft a reviewer rejected must not come back as the best-so-far answer.
          best: null,
          route: "revise",
        };
      case "edit": {
        const iteration = latest.iteration + 1;
        const draft: Draft = {
          iteration,
          text: decision.text,
          source: "human",
          usage: ZERO_USAGE,
          latencyMs: 0,
          createdAt: at,
        };
        return {
          ...clear,
          approvals: record("edit", {}, iteration),
          drafts: draft,
          iteration,
          route: "verify",
        };
      }
    }
  };
}
