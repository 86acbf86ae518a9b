// The `generate` node: writes the first draft of the task. A new task on a thread that already
// holds a finished refinement starts a fresh round, so per-run fields are overwritten.
import type { RunnableConfig } from "@langchain/core/runnables";
import { Overwrite } from "@langchain/langgraph";
import { RefineryError } from "../core/errors.ts";
import { callModel, isSimulatedModel } from "../core/models/call.ts";
import type { SettingsResolver } from "../core/settings.ts";
import type { Draft, RefineStateType, RefineUpdate } from "../core/state.ts";
import { buildMessages, emit, promptVariables } from "./support.ts";

export interface GenerateNodeOptions {
  settings: SettingsResolver;
}

export function createGenerateNode({ settings }: GenerateNodeOptions) {
  return async function generate(
    state: RefineStateType,
    config: RunnableConfig,
  ): Promise<RefineUpdate> {
    if (typeof state.task !== "string" || state.task.trim() === "") {
      throw new RefineryError("invalid_input", "task is empty", {
        field: "input.task",
        fix: "pass the task to refine as a non-empty string",
      });
    }
    const s = settings(config, state.options);
    const model = s.model("generate");
    const messages = buildMessages(s.prompts.generate, promptVariables(state));
    const result = await callModel(model, messages, {
      role: "generate",
      config,
      retry: s.retry,
      signal: config.signal,
    });
    const draft: Draft = {
      iteration: 1,
      text: result.text,
      source: "generate",
      usage: result.usage,
      latencyMs: result.latencyMs,
      createdAt: new Date().toISOString(),
    };
    emit(config, {
      type: "draft",
      node: "generate",
      iteration: 1,
      text: result.text,
      usage: result.usage,
      latencyMs: result.latencyMs,
    });
    const freshRound = state.drafts.length > 0;
    const update: RefineUpdate = {
      drafts: freshRound ? (new Overwrite([draft]) as unknown as Draft[]) : draft,
      iteration: 1,
      usage: result.usage,
      usageByNode: { generate: result.usage },
      simulated: isSimulatedModel(model),
    };
    if (freshRound) {
      Object.assign(update, {
        critiques: new Overwrite([]),
        verdicts: new Overwrite([]),
        best: null,
        stopReason: null,
        answer: null,
        error: null,
      });
    }
    return update;
  };
}
