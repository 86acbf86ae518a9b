// The `verify` node: runs every configured verifier on the newest draft (deterministic ones
// first), updates the best-so-far and decides what happens next according to the strategy.
// The conditional edge after it only reads the `route` / `stopReason` recorded here.
import type { RunnableConfig } from "@langchain/core/runnables";
import { selfCheck } from "../core/self-check.ts";
import type { SettingsResolver } from "../core/settings.ts";
import {
  critiqueFor,
  reasoningBehind,
  latestDraft,
  type RefineStateType,
  type RefineUpdate,
  type StepRecord,
} from "../core/state.ts";
import {
  asCandidate,
  assessDraft,
  decideAfterVerify,
  decideProactiveAfterVerify,
  pickBest,
} from "../core/stop-policy.ts";
import { addUsage, nodeUsage, ZERO_USAGE } from "../core/usage.ts";
import { runVerifiers } from "../core/verifiers/index.ts";
import { emit, gateForApproval } from "./support.ts";

export interface VerifyNodeOptions {
  settings: SettingsResolver;
}

export function createVerifyNode({ settings }: VerifyNodeOptions) {
  return async function verify(
    state: RefineStateType,
    config: RunnableConfig,
  ): Promise<RefineUpdate> {
    const s = settings(config, state.options);
    const strategy = state.strategy ?? s.strategy;
    const draft = latestDraft(state);
    if (!draft) return {};
    const verdicts = await runVerifiers(s.verifiers, draft.text, {
      task: state.task,
      context: state.context,
      iteration: draft.iteration,
      signal: config.signal,
    });
    const usage = verdicts.reduce((acc, v) => addUsage(acc, v.usage), ZERO_USAGE);
    // Under self-refine the critique of this draft ran before verify; under proactive it has not.
    const assessment = assessDraft(verdicts, critiqueFor(state, draft.iteration));
    const best = pickBest(state.best, asCandidate(draft, assessment));
    const totalTokens = state.usage.totalTokens + usage.totalTokens;
    // Only channels whose value changes are written: every write is a checkpoint row and a
    // channel version bump, and deterministic verifiers (zero usage) or a best-so-far that
    // stays put would only add no-op writes.
    const spent = usage.calls > 0 || usage.totalTokens > 0;
    const base: RefineUpdate = {
      verdicts,
      ...(best === state.best ? {} : { best }),
      ...(spent ? { usage: nodeUsage("verify", usage) } : {}),
    };
    emit(config, {
      type: "verdicts",
      node: "verify",
      iteration: draft.iteration,
      verdicts,
      assessment,
    });

    const point = {
      iteration: draft.iteration,
      hardPassed: best.hardPassed,
      hardTotal: best.hardTotal,
      score: best.score,
    };
    const gate = (outcome: Parameters<typeof gateForApproval>[3]) =>
      gateForApproval(state, s.approval, point, outcome);
    if (strategy === "vanilla") {
      return gate({
        ...base,
        stopReason: "single_pass",
        answer: best.text,
        decisions: record(draft.iteration, "stop", "vanilla: one draft, verifiers reported only"),
      });
    }
    if (strategy === "self-refine") {
      const decision = decideAfterVerify({
        assessment,
        iteration: draft.iteration,
        totalTokens,
        limits: s.limits,
      });
      return gate(
        decision.action === "stop"
          ? { ...base, stopReason: decision.reason, answer: best.text }
          : base,
      );
    }
    const check = selfCheck(draft.text, state.task, { working: reasoningBehind(state, draft) });
    const failing = verdicts.filter((v) => v.hard && !v.pass).map((v) => v.verifierId);
    const step = decideProactiveAfterVerify({
      assessment,
      failing,
      selfCheck: check,
      critiqueEnabled: s.critique,
      iteration: draft.iteration,
      totalTokens,
      limits: s.limits,
    });
    const action =
      step.action === "stop" && step.reason === "accepted" ? "skip_critique" : step.action;
    const decisions = record(draft.iteration, action, step.why);
    emit(config, { type: "decision", ...decisions });
    if (step.action === "stop")
      return gate({ ...base, decisions, stopReason: step.reason, answer: best.text });
    if (step.action === "critique") {
      // The draft's score is provisional until its critique: it must not displace a best-so-far
      // whose critique already scored it. The critique node settles the best-so-far.
      const { best: _provisional, ...rest } = base;
      return gate({ ...rest, decisions, route: step.action });
    }
    return gate({ ...base, decisions, route: step.action });
  };
}

function record(iteration: number, action: StepRecord["action"], reason: string): StepRecord {
  return { iteration, node: "verify", action, reason };
}
