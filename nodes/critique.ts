// The `critique` node: asks the critic model what is wrong with the newest draft. Skipped (no
// tokens spent) when the run's options turn the critique off.
import type { RunnableConfig } from "@langchain/core/runnables";
import { parseCritique } from "../core/critique-parse.ts";
import { callModel } from "../core/models/call.ts";
import type { SettingsResolver } from "../core/settings.ts";
import {
  latestDraft,
  type Critique,
  type RefineStateType,
  type RefineUpdate,
} from "../core/state.ts";
import { buildMessages, emit, promptVariables, stopOnModelFailure } from "./support.ts";

export interface CritiqueNodeOptions {
  settings: SettingsResolver;
}

export function createCritiqueNode({ settings }: CritiqueNodeOptions) {
  return async function critique(
    state: RefineStateType,
    config: RunnableConfig,
  ): Promise<RefineUpdate> {
    const s = settings(config, state.options);
    const draft = latestDraft(state);
    if (!s.critique || !draft) return {};
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
    return { critiques: entry, usage: result.usage, usageByNode: { critique: result.usage } };
  };
}
