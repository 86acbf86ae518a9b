// The `critique` node: asks the critic model what is wrong with the newest draft. Under
// self-refine it runs every round; under proactive only when the verify step found the draft
// doubtful, and it then decides whether to revise or accept.
import type { RunnableConfig } from "@langchain/core/runnables";
import { parseCritique } from "../core/critique-parse.ts";
import { callModel } from "../core/models/call.ts";
import type { SettingsResolver } from "../core/settings.ts";
import {
  latestDraft,
  verdictsFor,
  type Critique,
  type RefineStateType,
  type RefineUpdate,
} from "../core/state.ts";
import { assessDraft, decideProactiveAfterCritique, pickBest } from "../core/stop-policy.ts";
import { selfCheck } from "../core/self-check.ts";
import { nodeUsage } from "../core/usage.ts";
import {
  buildMessages,
  emit,
  gateForApproval,
  promptVariables,
  stopOnModelFailure,
} from "./support.ts";

export interface CritiqueNodeOptions {
  settings: SettingsResolver;
}

export function createCritiqueNode({ settings }: CritiqueNodeOptions) {
  return async function critique(
    state: RefineStateType,
    config: RunnableConfig,
  ): Promise<RefineUpdate> {
    const s = settings(config, state.options);
    const strategy = state.strategy ?? s.strategy;
    const draft = latestDraft(state);
    if (!draft) return {};
    if (!s.critique && strategy === "self-refine") return {};
    const messages = buildMessages(s.prompts.critique, {
      ...promptVariables(state),
      draft: draft.text,
    });
    let result;
    try {
      result = await callModel(s.model("critique"), messages, {
        role: "critique",
        config,
        retry: s.retry,
        signal: config.signal,
      });
    } catch (err) {
      return stopOnModelFailure(err, "critique", state);
    }
    const parsed = parseCritique(result.text);
    const entry: Critique = {
      iteration: draft.iteration,
      verdict: parsed.verdict,
      ...(parsed.score === undefined ? {} : { score: parsed.score }),
      issues: parsed.issues,
      raw: result.text,
      usage: result.usage,
      latencyMs: result.latencyMs,
    };
    emit(config, { type: "critique", node: "critique", ...entry });
    const update: RefineUpdate = {
      critiques: entry,
      usage: nodeUsage("critique", result.usage),
    };
    if (strategy === "self-refine") return update;

    // Proactive: the verifiers already ran on this draft; the critique settles it.
    const assessment = assessDraft(verdictsFor(state, draft.iteration), entry);
    const totalTokens = state.usage.totalTokens + result.usage.totalTokens;
    const step = decideProactiveAfterCritique(
      assessment,
      draft.iteration,
      totalTokens,
      s.limits,
      // A concrete defect the self-check found (an arithmetic slip) is a target even when the
      // critic is vague.
      selfCheck(draft.text, state.task),
    );
    // This draft, scored by its critique, against the best-so-far settled before it (verify left
    // the best alone while the critique was pending).
    const previous = state.best && state.best.iteration !== draft.iteration ? state.best : null;
    const best = pickBest(previous, {
      iteration: draft.iteration,
      text: draft.text,
      hardPassed: assessment.hardPassed,
      hardTotal: assessment.hardTotal,
      score: assessment.score,
    });
    const decision = {
      iteration: draft.iteration,
      node: "critique",
      action: step.action,
      reason: step.why,
    } as const;
    emit(config, { type: "decision", ...decision });
    const b = best;
    const point = {
      iteration: draft.iteration,
      hardPassed: b.hardPassed,
      hardTotal: b.hardTotal,
      score: b.score,
    };
    if (step.action === "stop") {
      return gateForApproval(state, s.approval, point, {
        ...update,
        decisions: decision,
        stopReason: step.reason,
        answer: b.text,
        best,
      });
    }
    return gateForApproval(state, s.approval, point, {
      ...update,
      decisions: decision,
      route: "revise",
      best,
    });
  };
}
