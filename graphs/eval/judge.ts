// The optional LLM-judge grading of an evaluation (`--judge-model`): a second grade of every first
// draft and final answer by a model that compares it with the reference, for open-ended tasks
// where no deterministic check can decide. It is reported apart from the deterministic grade and
// marked as model-graded; its tokens are the grading's, not the strategy's.
import { createLlmJudgeVerifier } from "../../core/verifiers/llm-judge.ts";
import { VERIFIER_ERROR_PREFIX } from "../../core/verifiers/spec.ts";
import type { ModelInvoker } from "../../core/models/types.ts";
import { referenceText, type DatasetItem } from "./dataset.ts";
import type { ItemRecord } from "./records.ts";

export const DEFAULT_JUDGE_RUBRIC =
  "Score 1 if the draft's final answer is correct: it says the same as the reference answer " +
  "(wording, format and extra explanation do not matter). Score 0 if it is wrong, missing or " +
  "contradicts the reference.";

export interface EvalJudge {
  invoke: ModelInvoker;
  /** What the report names: the judge model and its endpoint. */
  model: Record<string, unknown>;
  rubric?: string;
}

export interface JudgeVerdicts {
  first_pass: boolean;
  final_pass: boolean;
  first_score: number;
  final_score: number;
  /** Set when the judge failed or replied unreadably (the answer then counts as not passed). */
  error?: string;
  tokens: number;
}

/** Grades a first draft and a final answer with the judge (the same text is judged once). */
export async function judgeAnswers(
  judge: EvalJudge,
  item: DatasetItem,
  first: string,
  final: string,
  signal?: AbortSignal,
): Promise<JudgeVerdicts> {
  const verifier = createLlmJudgeVerifier(
    {
      kind: "llm_judge",
      rubric: `${judge.rubric ?? DEFAULT_JUDGE_RUBRIC}\n\nReference answer:\n${referenceText(item.reference)}`,
      threshold: 0.5,
      hard: false,
    },
    "eval-judge",
    judge.invoke,
  );
  const ctx = { task: item.task, context: item.context, iteration: 0, signal };
  let tokens = 0;
  let error: string | undefined;
  const grade = async (text: string) => {
    try {
      const r = await verifier.verify(text, ctx);
      tokens += r.usage?.totalTokens ?? 0;
      if (r.message.startsWith(VERIFIER_ERROR_PREFIX)) error = r.message;
      return { pass: r.pass, score: r.score };
    } catch (err) {
      signal?.throwIfAborted();
      error = (err as Error)?.message ?? String(err);
      return { pass: false, score: 0 };
    }
  };
  const a = await grade(first);
  const b = final === first ? a : await grade(final);
  return {
    first_pass: a.pass,
    final_pass: b.pass,
    first_score: a.score,
    final_score: b.score,
    ...(error === undefined ? {} : { error }),
    tokens,
  };
}

export interface JudgeStrategySummary {
  strategy: string;
  items: number;
  correct: number;
  accuracy: number | null;
  first_correct: number;
  /** Items where the judge and the deterministic grade disagree on the final answer. */
  disagreements: number;
  errors: number;
  tokens: number;
}

/** Per strategy, the judge's figures (records without a judge verdict are left out). */
export function summarizeJudge(
  strategies: readonly string[],
  records: readonly ItemRecord[],
): JudgeStrategySummary[] {
  return strategies.map((strategy) => {
    const mine = records.filter((r) => r.strategy === strategy && r.judge !== undefined);
    const count = (f: (r: ItemRecord & { judge: JudgeVerdicts }) => boolean) =>
      mine.filter((r) => f(r as ItemRecord & { judge: JudgeVerdicts })).length;
    const correct = count((r) => r.judge.final_pass);
    return {
      strategy,
      items: mine.length,
      correct,
      accuracy: mine.length === 0 ? null : correct / mine.length,
      first_correct: count((r) => r.judge.first_pass),
      disagreements: count((r) => r.judge.final_pass !== r.final_correct),
      errors: count((r) => r.judge.error !== undefined),
      tokens: mine.reduce((n, r) => n + (r.judge?.tokens ?? 0), 0),
    };
  });
}
