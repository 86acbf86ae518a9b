// The papers' baselines as evaluation strategies over the refine graph: one-round Self-Refine
// (one critique and one revision at most) and Self-Refine+ (an oracle tells the model that its
// answer is wrong, without the right answer, and only when it is wrong). Self-Refine+ reads the
// reference, so it is an upper bound for comparison, never a method one could deploy.
import type { RefineOptions } from "../../core/config.ts";
import type { Strategy } from "../../core/state.ts";
import type { DatasetItem } from "./dataset.ts";

export const BASELINES = ["self-refine-1", "self-refine+"] as const;
export type Baseline = (typeof BASELINES)[number];
/** A strategy of the refine graph, or a baseline built from one. */
export type EvalStrategy = Strategy | Baseline;

export function isBaseline(name: string): name is Baseline {
  return (BASELINES as readonly string[]).includes(name);
}

/** The refine graph's strategy a baseline runs on. */
export function graphStrategy(strategy: EvalStrategy): Strategy {
  return isBaseline(strategy) ? "self-refine" : strategy;
}

/** The id of the oracle check in a Self-Refine+ run (its verdicts say "is not correct"). */
export const ORACLE_ID = "oracle";

/**
 * The run options of a baseline, from the options the evaluation would use for `self-refine`.
 * One round = two drafts at most. Self-Refine+ has no critique of its own: the oracle's failed
 * check ("final answer X is not correct") is the feedback, and a right first draft is accepted.
 */
export function baselineOptions(
  strategy: EvalStrategy,
  item: DatasetItem,
  options: RefineOptions,
): RefineOptions {
  if (!isBaseline(strategy)) return options;
  const oneRound = { ...options, strategy: "self-refine" as const, maxIterations: 2 };
  if (strategy === "self-refine-1") return oneRound;
  const oracle = {
    ...item.grade,
    id: ORACLE_ID,
    hard: true,
    ...(item.grade.kind === "answer_match" ? { revealExpected: false } : {}),
  };
  return { ...oneRound, critique: false, verifiers: [...item.verifiers, oracle] };
}

/** Which prompts a strategy's runs use (for the report's provenance). */
export function promptsOf(strategy: EvalStrategy): string[] {
  switch (strategy) {
    case "vanilla":
      return ["generate"];
    case "self-refine":
    case "self-refine-1":
      return ["generate", "critique", "revise"];
    case "self-refine+":
      return ["generate", "revise"];
    case "proactive":
      return ["generate", "critiqueTargeted", "localize", "reviseTargeted"];
    case "pasr":
      return ["pasr", "critiqueTargeted", "localize", "reviseTargeted"];
  }
}
