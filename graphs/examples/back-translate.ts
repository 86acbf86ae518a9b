// A node kind written in TypeScript for declarative graphs: `back_translate` translates the
// newest draft back into the source language, scores how much of the source it keeps (word
// overlap, deterministic) and records that as a hard verdict, so `verdicts.allHardPass` and the
// revise step's failed checks work as with any verifier. Used by translation.yaml.
//
// Load it in the server with REFINERY_NODE_KINDS=./graphs/examples/back-translate.ts (the module
// exports `nodeKinds`), or call registerNodeKind("back_translate", backTranslateKind).
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { z } from "zod";
import { ModelSpecSchema } from "../../core/config.ts";
import { callModel } from "../../core/models/call.ts";
import { latestDraft } from "../../core/state.ts";
import { pickBest } from "../../core/stop-policy.ts";
import { nodeUsage } from "../../core/usage.ts";
import type { Verdict } from "../../core/verifiers/types.ts";
import { emit, stopOnModelFailure } from "../../nodes/support.ts";
import type { NodeKind } from "../declarative/kinds.ts";

const BackTranslateSchema = z
  .object({
    language: z.string().min(1).default("English").describe("The source text's language."),
    threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.7)
      .describe("Least word overlap (F1) with the source for the translation to pass."),
    source: z
      .enum(["context", "task"])
      .default("context")
      .describe("Where the source text is in the input."),
    model: ModelSpecSchema.optional().describe("Model that translates back (role judge)."),
  })
  .strict();

const words = (text: string): string[] => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

/** Word-overlap F1 between two texts (multiset), 0..1. */
export function overlap(a: string, b: string): number {
  const wa = words(a);
  const wb = words(b);
  if (wa.length === 0 || wb.length === 0) return wa.length === wb.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of wa) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of wb) {
    const n = counts.get(w) ?? 0;
    if (n > 0) {
      common++;
      counts.set(w, n - 1);
    }
  }
  const precision = common / wb.length;
  const recall = common / wa.length;
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

export const backTranslateKind: NodeKind<typeof BackTranslateSchema> = {
  description: "Translates the draft back, scores its overlap with the source, records a verdict.",
  schema: BackTranslateSchema,
  refineOptions: (o) => (o.model ? { models: { judge: o.model } } : {}),
  create: (o, deps) => async (state, config) => {
    const draft = latestDraft(state);
    if (!draft) return {};
    const s = deps.settings(config, state.options);
    const source = o.source === "context" ? state.context : state.task;
    let result;
    try {
      result = await callModel(
        s.model("judge"),
        [
          new SystemMessage(
            `Translate the text into ${o.language}. Reply with the translation only.`,
          ),
          new HumanMessage(draft.text),
        ],
        { role: "judge", config, retry: s.retry, signal: config.signal },
      );
    } catch (err) {
      return stopOnModelFailure(err, deps.name, state, config);
    }
    const similarity = Math.round(overlap(source, result.text) * 1000) / 1000;
    const pass = similarity >= o.threshold;
    const verdict: Verdict = {
      verifierId: "back_translation",
      kind: "llm_judge",
      hard: true,
      iteration: draft.iteration,
      pass,
      score: similarity,
      message: pass
        ? `the back-translation keeps the source's meaning (overlap ${similarity})`
        : `translated back into ${o.language} it reads "${result.text.slice(0, 300)}", which drifts from the source (overlap ${similarity} < ${o.threshold}): keep every fact, name and number of the source`,
      usage: result.usage,
      latencyMs: result.latencyMs,
    };
    emit(config, {
      type: "verdicts",
      node: deps.name,
      iteration: draft.iteration,
      verdicts: [verdict],
    });
    const best = pickBest(state.best, {
      iteration: draft.iteration,
      text: draft.text,
      hardPassed: pass ? 1 : 0,
      hardTotal: 1,
      score: similarity,
    });
    return {
      verdicts: verdict,
      best,
      usage: nodeUsage(deps.name, result.usage),
      vars: { backTranslation: result.text, similarity },
    };
  },
};

/** Picked up by the server from modules listed in REFINERY_NODE_KINDS. */
export const nodeKinds = { back_translate: backTranslateKind };
