// The benchmark modes of answer_match: math (symbolic equivalence, MATH/MATH-500), choice (the
// option a reply chose, ARC/MMLU) and qa (SQuAD exact match and token F1). Each reads the marked
// final answer the same way the numeric and exact modes do.
import { RefineryError } from "../errors.ts";
import { extractChoice } from "./choice.ts";
import { truncate } from "./json-schema.ts";
import { mathEquivalent } from "./math-equivalence.ts";
import { exactMatch, tokenF1 } from "./qa-metrics.ts";
import { extractFinalAnswer, lastBoxed } from "./answer-match.ts";
import type { AnswerMatchVerifierSpec } from "./spec.ts";
import type { Verifier, VerifierResult } from "./types.ts";

const ASK = 'end the reply with a line "Answer: <value>"';

/** The marked answer, or a one-line reply as a whole; a boxed value inside a marker is the value. */
function finalAnswerText(draft: string): string | undefined {
  const marked = extractFinalAnswer(draft)?.text;
  const trimmed = draft.trim();
  const text =
    marked ??
    (trimmed !== "" && !trimmed.includes("\n") && trimmed.length <= 200 ? trimmed : undefined);
  if (text === undefined) return undefined;
  return (lastBoxed(text) ?? text).trim();
}

export function createBenchmarkModeVerifier(
  spec: AnswerMatchVerifierSpec & { mode: "math" | "choice" | "qa" },
  id: string,
  field: string,
): Verifier {
  const base = { id, kind: "answer_match" as const, hard: spec.hard, deterministic: true };
  const expected = String(spec.expected);
  const reveal = (got: string) =>
    spec.revealExpected
      ? `${got} does not match expected ${JSON.stringify(expected)}`
      : `${got} is not correct`;
  const ok = (got: string, score = 1): VerifierResult => ({
    pass: true,
    score,
    message: `final answer ${got} is correct`,
  });
  const no = (message: string, score = 0): VerifierResult => ({ pass: false, score, message });

  if (spec.mode === "choice") {
    const choices = spec.choices;
    if (!choices) {
      throw new RefineryError("invalid_config", "choice mode needs the options", {
        field: `${field}.choices`,
        fix: 'add choices, e.g. [{"label": "A", "text": "Paris"}, {"label": "B", "text": "Rome"}]',
      });
    }
    if (!choices.some((c) => c.label === expected)) {
      throw new RefineryError(
        "invalid_config",
        `expected ${JSON.stringify(expected)} is not one of the labels ${choices.map((c) => c.label).join(", ")}`,
        { field: `${field}.expected`, fix: "set expected to the label of the right option" },
      );
    }
    return {
      ...base,
      async verify(draft) {
        const chosen = extractChoice(draft, choices);
        if (chosen === undefined)
          return no(`no option chosen: end the reply with a line "Answer: <letter>"`);
        return chosen === expected
          ? ok(`option ${chosen}`)
          : no(`final answer: option ${reveal(chosen)}`);
      },
    };
  }

  if (spec.mode === "qa") {
    const golds = [expected, ...(spec.alternatives ?? [])];
    return {
      ...base,
      async verify(draft) {
        const got = finalAnswerText(draft);
        if (got === undefined) return no(`no final answer found: ${ASK}`);
        const f1 = tokenF1(got, golds);
        const shown = JSON.stringify(truncate(got, 80));
        const pass = exactMatch(got, golds) || (spec.minF1 !== undefined && f1 >= spec.minF1);
        return pass
          ? ok(shown, f1)
          : no(`final answer ${reveal(shown)} (token F1 ${f1.toFixed(2)})`, f1);
      },
    };
  }

  return {
    ...base,
    async verify(draft) {
      const got = finalAnswerText(draft);
      if (got === undefined) return no(`no final answer found: put it in \\boxed{} or ${ASK}`);
      const shown = JSON.stringify(truncate(got, 80));
      return (await mathEquivalent(got, expected))
        ? ok(shown)
        : no(`final answer ${reveal(shown)}`);
    },
  };
}
