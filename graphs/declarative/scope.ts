// What conditions and transforms can read: a plain-data view of the state, summarised so that
// a condition reads like the decision it states (`verdicts.allHardPass`, `critique.score`).
// Pure; its shape (SCOPE_SHAPE) is what the compiler checks names against.
import { critiqueFor, latestDraft, verdictsFor } from "../../core/state.ts";
import type { Limits } from "../../core/stop-policy.ts";
import { totalsOnly } from "../../core/usage.ts";
import type { ScopeShape, Value } from "./expression.ts";
import type { DeclarativeStateType } from "./state.ts";

export const SCOPE_SHAPE: Record<string, ScopeShape> = {
  task: "leaf",
  context: "leaf",
  iteration: "leaf",
  stopReason: "leaf",
  route: "leaf",
  answer: "leaf",
  approved: "leaf",
  approvals: "leaf",
  drafts: "leaf",
  strategy: "leaf",
  draft: { text: "leaf", iteration: "leaf", source: "leaf", chars: "leaf", words: "leaf" },
  critique: { verdict: "leaf", score: "leaf", issues: "leaf", clean: "leaf" },
  verdicts: {
    count: "leaf",
    passed: "leaf",
    failed: "leaf",
    hardFailed: "leaf",
    softFailed: "leaf",
    allPass: "leaf",
    allHardPass: "leaf",
    score: "leaf",
    byId: "open",
  },
  best: { text: "leaf", iteration: "leaf", score: "leaf", hardPassed: "leaf", hardTotal: "leaf" },
  usage: { totalTokens: "leaf", promptTokens: "leaf", completionTokens: "leaf", calls: "leaf" },
  feedback: { count: "leaf", last: "leaf" },
  limits: { maxIterations: "leaf", scoreThreshold: "leaf", tokenBudget: "leaf" },
  error: { code: "leaf", message: "leaf", node: "leaf" },
  vars: "open",
};

export function buildScope(state: DeclarativeStateType, limits: Limits): Record<string, Value> {
  const draft = latestDraft(state);
  const verdicts = draft ? verdictsFor(state, draft.iteration) : [];
  const critique = draft ? critiqueFor(state, draft.iteration) : undefined;
  const hard = verdicts.filter((v) => v.hard);
  const lastApproval = state.approvals[state.approvals.length - 1];
  const lastFeedback = state.feedback[state.feedback.length - 1];
  const byId: Record<string, Value> = {};
  for (const v of verdicts)
    byId[v.verifierId] = {
      pass: v.pass,
      score: v.score,
      hard: v.hard,
      kind: v.kind,
      message: v.message,
    };
  return {
    task: state.task,
    context: state.context,
    iteration: state.iteration,
    stopReason: state.stopReason,
    route: state.route,
    answer: state.answer,
    approved: lastApproval?.action === "approve",
    approvals: state.approvals.length,
    drafts: state.drafts.length,
    strategy: state.strategy,
    draft: draft
      ? {
          text: draft.text,
          iteration: draft.iteration,
          source: draft.source,
          chars: draft.text.length,
          words: draft.text.split(/\s+/).filter(Boolean).length,
        }
      : null,
    critique: critique
      ? {
          verdict: critique.verdict,
          score: critique.score ?? null,
          issues: critique.issues.length,
          clean: critique.verdict === "pass" && critique.issues.length === 0,
        }
      : null,
    verdicts: {
      count: verdicts.length,
      passed: verdicts.filter((v) => v.pass).length,
      failed: verdicts.filter((v) => !v.pass).length,
      hardFailed: hard.filter((v) => !v.pass).length,
      softFailed: verdicts.filter((v) => !v.hard && !v.pass).length,
      allPass: verdicts.every((v) => v.pass),
      allHardPass: hard.every((v) => v.pass),
      score: verdicts.length
        ? verdicts.reduce((sum, v) => sum + v.score, 0) / verdicts.length
        : null,
      byId,
    },
    best: state.best
      ? {
          text: state.best.text,
          iteration: state.best.iteration,
          score: state.best.score,
          hardPassed: state.best.hardPassed,
          hardTotal: state.best.hardTotal,
        }
      : null,
    usage: { ...totalsOnly(state.usage) },
    feedback: { count: state.feedback.length, last: lastFeedback?.text ?? null },
    limits: {
      maxIterations: limits.maxIterations,
      scoreThreshold: limits.scoreThreshold,
      tokenBudget: limits.tokenBudget ?? null,
    },
    error: state.error
      ? { code: state.error.code, message: state.error.message, node: state.error.node }
      : null,
    vars: state.vars,
  };
}
