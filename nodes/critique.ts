// The `critique` node: asks the critic model what is wrong with the newest draft. Under
// self-refine it runs every round; under proactive only when the verify step found the draft
// doubtful, and it then decides whether to revise or accept.
import type { RunnableConfig } from "@langchain/core/runnables";
import { parseCritique } from "../core/critique-parse.ts";
import { callModel } from "../core/models/call.ts";
import type { SettingsResolver } from "../core/settings.ts";
import {
  latestDraft,
  reasoningBehind,
  verdictsFor,
  type Critique,
  type RefineStateType,
  type RefineUpdate,
  type StepRecord,
} from "../core/state.ts";
import {
  asCandidate,
  assessDraft,
  decideProactiveAfterCritique,
  pickBest,
} from "../core/stop-policy.ts";
import { selfCheck } from "../core/self-check.ts";
import { addUsage, nodeUsage } from "../core/usage.ts";
import {
  buildMessages,
  emit,
  gateForApproval,
  promptVariables,
  stopOnModelFailure,
  usageOf,
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
    const ask = async (template: typeof s.prompts.critique, vars: Record<string, string>) => {
      const messages = buildMessages(template, { ...promptVariables(state), ...vars });
      const result = await callModel(s.model("critique"), messages, {
        role: "critique",
        config,
        retry: s.retry,
        signal: config.signal,
      });
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
      return entry;
    };
    let entry: Critique;
    try {
      entry = await ask(
        strategy === "self-refine" ? s.prompts.critique : s.prompts.critiqueTargeted,
        {
          draft: draft.text,
        },
      );
    } catch (err) {
      return stopOnModelFailure(err, "critique", state, config);
    }
    if (strategy === "self-refine")
      return { critiques: entry, usage: nodeUsage("critique", entry.usage) };

    // Proactive: the verifiers already ran on this draft; the critique settles it.
    const verdicts = verdictsFor(state, draft.iteration);
    // A concrete defect the self-check found (an arithmetic slip) is a target even when the
    // critic is vague.
    const check = selfCheck(draft.text, state.task, { working: reasoningBehind(state, draft) });
    const entries = [entry];
    let usage = entry.usage;
    const decisions: StepRecord[] = [];
    let assessment = assessDraft(verdicts, entry);
    let step = decideProactiveAfterCritique(
      assessment,
      draft.iteration,
      state.usage.totalTokens + usage.totalTokens,
      s.limits,
      { selfCheck: check },
    );
    if (step.action === "localize") {
      decisions.push(record(draft.iteration, "localize", step.why));
      emit(config, { type: "decision", ...decisions[0] });
      try {
        entry = await ask(s.prompts.localize, {
          draft: draft.text,
          critique: entry.issues.map((i) => `- ${i}`).join("\n") || "(no issues named)",
        });
      } catch (err) {
        // The follow-up failed after its retries: keep the draft on the first critique's word,
        // as before the follow-up existed, and record the error.
        const failed = stopOnModelFailure(err, "critique", state, config);
        const previous = state.best && state.best.iteration !== draft.iteration ? state.best : null;
        const best = pickBest(previous, asCandidate(draft, assessment));
        return {
          ...failed,
          critiques: entries,
          decisions,
          usage: nodeUsage("critique", addUsage(usage, usageOf(err))),
          answer: best.text,
          best,
        };
      }
      entries.push(entry);
      usage = addUsage(usage, entry.usage);
      assessment = assessDraft(verdicts, entry);
      step = decideProactiveAfterCritique(
        assessment,
        draft.iteration,
        state.usage.totalTokens + usage.totalTokens,
        s.limits,
        { selfCheck: check, localized: true },
      );
    }
    const update: RefineUpdate = {
      critiques: entries,
      usage: nodeUsage("critique", usage),
    };
    // This draft, scored by its critique, against the best-so-far settled before it (verify left
    // the best alone while the critique was pending).
    const previous = state.best && state.best.iteration !== draft.iteration ? state.best : null;
    const best = pickBest(previous, asCandidate(draft, assessment));
    // `localize` was taken above; what remains is stop or revise.
    const decision = record(draft.iteration, step.action === "stop" ? "stop" : "revise", step.why);
    emit(config, { type: "decision", ...decision });
    decisions.push(decision);
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
        decisions,
        stopReason: step.reason,
        answer: b.text,
        best,
      });
    }
    return gateForApproval(state, s.approval, point, {
      ...update,
      decisions,
      route: "revise",
      best,
    });
  };
}

function record(iteration: number, action: StepRecord["action"], reason: string): StepRecord {
  return { iteration, node: "critique", action, reason };
}
