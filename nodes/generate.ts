// The `generate` node: writes the first draft. With the `pasr` strategy it asks a PASR-trained
// model for `<think>…<refine>…</refine>…</think><answer>…</answer>`, parses the reply while it
// streams (each refine segment is emitted and stored), keeps the answer as the draft and the
// whole generation as `state.pasr` (think text, refines and answer with their positions; the
// think may come in the endpoint's reasoning field or be opened by the chat template); a
// malformed reply falls back to the proactive strategy with the reason recorded.
// A new task on a thread that holds a finished refinement starts a fresh round.
import type { RunnableConfig } from "@langchain/core/runnables";
import { Overwrite } from "@langchain/langgraph";
import { RefineryError } from "../core/errors.ts";
import { callModel, isSimulatedModel } from "../core/models/call.ts";
import { lessonsKey } from "../core/memory/lessons.ts";
import { PASR_SYSTEM_PROMPT } from "../core/pasr.ts";
import type { PasrEvent } from "../core/pasr.ts";
import { PasrReader } from "../core/pasr-trace.ts";
import type { SettingsResolver } from "../core/settings.ts";
import type {
  Draft,
  PasrTrace,
  Refinement,
  RefineStateType,
  RefineUpdate,
  StepRecord,
  Strategy,
  UsedLesson,
} from "../core/state.ts";
import { nodeUsage } from "../core/usage.ts";
import { buildMessages, emit, promptVariables } from "./support.ts";

/** Lessons from earlier runs for a task; `assistantId` is undefined outside the server. */
export interface LessonSource {
  retrieve(assistantId: string | undefined, task: string, limit: number): Promise<UsedLesson[]>;
}

export interface GenerateNodeOptions {
  settings: SettingsResolver;
  lessons?: LessonSource;
}

export function createGenerateNode({ settings, lessons }: GenerateNodeOptions) {
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
    let refinements: Refinement[] = [];
    const decisions: StepRecord[] = [];
    let reader: PasrReader | undefined;
    let currentAttempt: number | undefined;
    let trace: PasrTrace | undefined;

    const pasr = strategy === "pasr";
    const memory = s.options.memory;
    const used: UsedLesson[] =
      lessons && memory?.enabled !== false && (memory?.lessons ?? 2) > 0
        ? await lessons.retrieve(
            typeof config.configurable?.assistant_id === "string"
              ? lessonsKey(
                  config.configurable.assistant_id,
                  typeof config.configurable.refinery_partition === "string"
                    ? config.configurable.refinery_partition
                    : undefined,
                )
              : undefined,
            state.context ? `${state.task}\n${state.context}` : state.task,
            memory?.lessons ?? 2,
          )
        : [];
    const variables = { ...promptVariables(state), lessons_block: lessonsBlock(used) };
    const template = pasr ? s.prompts.pasr : s.prompts.generate;
    const messages = buildMessages(
      // A template without the placeholder still gets the lessons, after its user text.
      used.length && !template.user.includes("{lessons_block}")
        ? { ...template, user: `${template.user}{lessons_block}` }
        : template,
      pasr ? { ...variables, pasr_system: PASR_SYSTEM_PROMPT } : variables,
    );
    // A retry starts the generation over: what an earlier attempt streamed is dropped.
    const readerFor = (attempt: number): PasrReader => {
      if (!reader || attempt !== currentAttempt) {
        reader = new PasrReader();
        currentAttempt = attempt;
      }
      return reader;
    };
    const emitRefines = (events: PasrEvent[]) => {
      for (const e of events) {
        if (e.type !== "refine") continue;
        emit(config, {
          type: "refine",
          node: "generate",
          iteration: 1,
          index: e.index,
          text: e.text,
          offset: e.offset,
          end: e.end,
        });
      }
    };
    const result = await callModel(model, messages, {
      role: "generate",
      config,
      retry: s.retry,
      signal: config.signal,
      ...(pasr
        ? {
            onChunk: (text: string, attempt: number) =>
              emitRefines(readerFor(attempt).content(text)),
            onReasoning: (text: string, attempt: number) =>
              emitRefines(readerFor(attempt).reasoning(text)),
          }
        : {}),
    });
    let text = result.text;
    if (pasr) {
      // A reply that was not streamed chunk by chunk is read whole.
      if (!reader) {
        reader = new PasrReader();
        if (result.reasoning) reader.reasoning(result.reasoning);
        reader.content(result.text);
      }
      const parsed = reader.finish();
      trace = parsed.trace;
      refinements = parsed.result.refinements.map((r) => ({
        iteration: 1,
        index: r.index,
        text: r.text,
        offset: r.offset,
        end: r.end,
      }));
      if (parsed.result.ok && parsed.result.answer !== undefined) {
        text = parsed.result.answer;
        decisions.push({
          iteration: 1,
          node: "generate",
          action: refinements.length ? "revise" : "skip_critique",
          reason: `PASR: ${refinements.length} in-generation refinement(s)`,
        });
      } else {
        strategy = "proactive";
        trace.fallback = true;
        // As with a think block in the content, the reasoning stays in the draft proactive revises.
        text = stripPasrTags(
          result.reasoning ? `${result.reasoning}\n${result.text}` : result.text,
        );
        decisions.push({
          iteration: 1,
          node: "generate",
          action: "fallback",
          reason: `malformed PASR output (${parsed.result.errors.join("; ")}): continuing with the proactive strategy`,
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
      usage: nodeUsage("generate", result.usage),
      strategy,
    };
    // Self-refine's order is fixed in the edges; other strategies go to verify first.
    if (strategy !== "self-refine") update.route = "verify";
    else if (freshRound) update.route = null;
    // No-op writes (false into an OR reducer, empty lists into append reducers) are left out:
    // each one costs a checkpoint row. A fresh round still resets the lists below.
    if (isSimulatedModel(model)) update.simulated = true;
    if (used.length) update.lessons = used;
    else if (freshRound && state.lessons.length) update.lessons = [];
    if (decisions.length) update.decisions = decisions;
    if (refinements.length) update.refinements = refinements;
    if (trace) update.pasr = trace;
    else if (freshRound && state.pasr) update.pasr = null;
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

/** The lessons as a prompt block, to be applied where relevant rather than as rules. */
function lessonsBlock(used: UsedLesson[]): string {
  if (used.length === 0) return "";
  return `\nLessons from earlier, similar tasks:\n${used
    .map((l) => `- ${l.text}${l.about ? ` (learned on: ${l.about})` : ""}`)
    .join("\n")}\n`;
}
