// The constraints verifier: length bounds (in words or characters) and required/forbidden
// substrings. Every violated constraint is listed so one revision can fix them all.
import { truncate } from "./json-schema.ts";
import type { ConstraintsVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";

/** Whitespace-separated words; characters are counted as code points so emoji count once. */
export function measure(text: string, unit: "chars" | "words"): number {
  const trimmed = text.trim();
  if (unit === "chars") return [...trimmed].length;
  return trimmed === "" ? 0 : trimmed.split(/\s+/u).length;
}

export function createConstraintsVerifier(spec: ConstraintsVerifierSpec, id: string): Verifier {
  const unitName = (n: number) =>
    spec.unit === "words" ? (n === 1 ? "word" : "words") : n === 1 ? "character" : "characters";
  const fold = (s: string) => (spec.caseSensitive ? s : s.toLowerCase());
  const total =
    (spec.minLength === undefined ? 0 : 1) +
    (spec.maxLength === undefined ? 0 : 1) +
    (spec.contains?.length ?? 0) +
    (spec.notContains?.length ?? 0);

  return {
    id,
    kind: "constraints",
    hard: spec.hard,
    deterministic: true,
    async verify(draft) {
      const problems: string[] = [];
      const length = measure(draft, spec.unit);
      if (spec.minLength !== undefined && length < spec.minLength) {
        problems.push(
          `too short: ${length} ${unitName(length)}, minimum ${spec.minLength} ${unitName(spec.minLength)}`,
        );
      }
      if (spec.maxLength !== undefined && length > spec.maxLength) {
        problems.push(
          `too long: ${length} ${unitName(length)}, maximum ${spec.maxLength} ${unitName(spec.maxLength)}`,
        );
      }
      const haystack = fold(draft);
      for (const needle of spec.contains ?? []) {
        if (!haystack.includes(fold(needle))) {
          problems.push(`missing required text ${JSON.stringify(truncate(needle, 80))}`);
        }
      }
      for (const needle of spec.notContains ?? []) {
        if (haystack.includes(fold(needle))) {
          problems.push(`contains forbidden text ${JSON.stringify(truncate(needle, 80))}`);
        }
      }
      if (problems.length === 0) {
        return {
          pass: true,
          score: 1,
          message: `all ${total} constraint${total === 1 ? "" : "s"} met (${length} ${unitName(length)})`,
        };
      }
      return {
        pass: false,
        score: (total - problems.length) / total,
        message:
          problems.length === 1
            ? (problems[0] ?? "")
            : `${problems.length} constraints violated:\n- ${problems.join("\n- ")}`,
      };
    },
  };
}
