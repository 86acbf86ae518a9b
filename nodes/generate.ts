// The `generate` node: writes the first draft. With the `pasr` strategy it asks a PASR-trained
// model for `<think>…<refine>…</refine>…</think><answer>…</answer>`, parses the reply while it
// streams (each refine segment is emitted and stored) and keeps the answer as the draft; a
// malformed reply falls back to the proactive strategy with the reason recorded.
// A new task on a thread that holds a finished refinement starts a fresh round.
import type { RunnableConfig } from "@langchain/core/runnables";
import { Overwrite } from "@langchain/langgraph";
import { RefineryError } from "../core/errors.ts";
import { callModel, isSimulatedModel } from "../core/models/call.ts";
import { PASR_SYSTEM_PROMPT, PasrStreamParser } from "../core/pasr.ts";
import type { SettingsResolver } from "../core/settings.ts";
import type {
  Draft,
  Refinement,
  RefineStateType,
  RefineUpdate,
  StepRecord,
  Strategy,
} from "../core/state.ts";
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
    let strategy: Strategy = s.strategy;
    const refinements: Refinement[] = [];
    const decisions: StepRecord[] = [];
    let parser: PasrStreamParser | undefined;
    let currentAttempt: number | undefined;

    const pasr = strategy === "pasr";
    const messages = pasr
      ? buildMessages(s.prompts.pasr, {
          ...promptVariables(state),
          pasr_system: PASR_SYSTEM_PROMPT,
        })
      : buildMessages(s.prompts.generate, promptVariables(state));
    const result = await callModel(model, messages, {
      role: "generate",
      config,
      retry: s.retry,
      signal: config.signal,
      ...(pasr
        ? {
            onChunk: (text: string, attempt: number) => {
              if (!parser || attempt !== currentAttempt) {
                parser = new PasrStreamParser();
                currentAttempt = attempt;
                refinements.length = 0;
              }
              for (const e of parser.push(text)) {
                if (e.type === "refine") {
                  refinements.push({ iteration: 1, index: e.index, text: e.text });
                  emit(config, {
                    type: "refine",
                    node: "generate",
                    iteration: 1,
                    index: e.index,
                    text: e.text,
                  });
                }
              }
            },
          }
        : {}),
    });
    let text = result.text;
    if (pasr) {
      const parsed = (parser ?? new PasrStreamParser()).end();
      if (parsed.ok && parsed.answer !== undefined) {
        text = parsed.answer;
        decisions.push({
          iteration: 1,
          node: "generate",
          action: refinements.length ? "revise" : "skip_critique",
          reason: `PASR: ${refinements.length} in-generation refinement(s)`,
        });
      } else {
        strategy = "proactive";
        text = stripPasrTags(result.text);
        decisions.push({
          iteration: 1,
          node: "generate",
          action: "fallback",
          reason: `malformed PASR output (${parsed.errors.join("; ")}): continuing with the proactive strategy`,
        });
      }
    }
    const draft: Draft = {
      iteration: 1,
      text,
      source: "generate",
      usage: result.usage,
      latencyMs: result.latencyMs,
      createdAt: new Date().toISOString(),
    };
    emit(config, {
      type: "draft",
      node: "generate",
      iteration: 1,
      text,
      usage: result.usage,
      latencyMs: result.latencyMs,
    });
    const freshRound = state.drafts.length > 0;
    const update: RefineUpdate = {
      drafts: freshRound ? (new Overwrite([draft]) as unknown as Draft[]) : draft,
      iteration: 1,
      usage: result.usage,
      usageByNode: { generate: result.usage },
      strategy,
    };
    // Self-refine's order is fixed in the edges; other strategies go to verify first.
    if (strategy !== "self-refine") update.route = "verify";
    else if (freshRound) update.route = null;
    // No-op writes (false into an OR reducer, empty lists into append reducers) are left out:
    // each one costs a checkpoint row. A fresh round still resets the lists below.
    if (isSimulatedModel(model)) update.simulated = true;
    if (decisions.length) update.decisions = decisions;
    if (refinements.length) update.refinements = refinements;
    if (freshRound) {
      Object.assign(update, {
        decisions: new Overwrite(decisions),
        refinements: new Overwrite(refinements),
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

function stripPasrTags(text: string): string {
  const answer = /<answer>([\s\S]*?)(<\/answer>|$)/i.exec(text);
  if (answer?.[1]?.trim()) return answer[1].trim();
  return text.replace(/<\/?(think|refine|answer)>/gi, "").trim();
}
