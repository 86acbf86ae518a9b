// The `verify` node: runs every configured verifier on the newest draft (deterministic ones
// first), updates the best-so-far, and applies the stop policy. The conditional edge after it
// only reads the `stopReason` this node records.
import type { RunnableConfig } from "@langchain/core/runnables";
import type { SettingsResolver } from "../core/settings.ts";
import {
  critiqueFor,
  latestDraft,
  type RefineStateType,
  type RefineUpdate,
} from "../core/state.ts";
import { assessDraft, decideAfterVerify, pickBest } from "../core/stop-policy.ts";
import { addUsage, ZERO_USAGE } from "../core/usage.ts";
import { runVerifiers } from "../core/verifiers/index.ts";
import { emit } from "./support.ts";

export interface VerifyNodeOptions {
  settings: SettingsResolver;
}

export function createVerifyNode({ settings }: VerifyNodeOptions) {
  return async function verify(
    state: RefineStateType,
    config: RunnableConfig,
  ): Promise<RefineUpdate> {
    const s = settings(config, state.options);
    const draft = latestDraft(state);
    if (!draft) return {};
    const verdicts = await runVerifiers(s.verifiers, draft.text, {
      task: state.task,
      context: state.context,
      iteration: draft.iteration,
      signal: config.signal,
    });
    const usage = verdicts.reduce((acc, v) => addUsage(acc, v.usage), ZERO_USAGE);
    const assessment = assessDraft(verdicts, critiqueFor(state, draft.iteration));
    const best = pickBest(state.best, {
      iteration: draft.iteration,
      text: draft.text,
      hardPassed: assessment.hardPassed,
      hardTotal: assessment.hardTotal,
      score: assessment.score,
    });
    const decision = decideAfterVerify({
      assessment,
      iteration: draft.iteration,
      totalTokens: state.usage.totalTokens + usage.totalTokens,
      limits: s.limits,
    });
    emit(config, {
      type: "verdicts",
      node: "verify",
      iteration: draft.iteration,
      verdicts,
      assessment,
      decision,
    });
    return {
      verdicts,
      best,
      usage,
      usageByNode: { verify: usage },
      ...(decision.action === "stop" ? { stopReason: decision.reason, answer: best.text } : {}),
    };
  };
}
