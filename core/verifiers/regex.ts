// The regex verifier: patterns the draft must match and patterns it must not match. Patterns are
// compiled when the verifier is built, so a typo fails the config rather than every draft.
import { RefineryError } from "../errors.ts";
import { truncate } from "./json-schema.ts";
import type { RegexVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";

interface CompiledRule {
  source: string;
  regex: RegExp;
  mustMatch: boolean;
}

export function createRegexVerifier(
  spec: RegexVerifierSpec,
  id: string,
  field = "verifier",
): Verifier {
  const flags = spec.flags ?? "";
  try {
    new RegExp("", flags);
  } catch (error) {
    throw new RefineryError("invalid_config", `invalid regex flags ${JSON.stringify(flags)}`, {
      field: `${field}.flags`,
      fix: "use each of the flags d, g, i, m, s, u, v, y at most once, and not u together with v",
      cause: error,
    });
  }
  const rules: CompiledRule[] = [
    ...(spec.mustMatch ?? []).map((source, j) =>
      compile(source, flags, true, `${field}.mustMatch[${j}]`),
    ),
    ...(spec.mustNotMatch ?? []).map((source, j) =>
      compile(source, flags, false, `${field}.mustNotMatch[${j}]`),
    ),
  ];

  return {
    id,
    kind: "regex",
    hard: spec.hard,
    deterministic: true,
    async verify(draft) {
      const problems: string[] = [];
      for (const rule of rules) {
        // `g` and `y` make RegExp stateful through lastIndex; resetting it keeps every call
        // independent of the previous one (and `y` then means "at the start of the draft").
        rule.regex.lastIndex = 0;
        const match = rule.regex.exec(draft);
        if (rule.mustMatch && !match) {
          problems.push(`does not match required pattern ${show(rule)}`);
        } else if (!rule.mustMatch && match) {
          problems.push(
            `matches forbidden pattern ${show(rule)}: ${JSON.stringify(truncate(match[0], 80))} ` +
              `at line ${lineOf(draft, match.index)}`,
          );
        }
      }
      if (problems.length === 0) {
        return {
          pass: true,
          score: 1,
          message: `all ${rules.length} pattern rule${rules.length === 1 ? "" : "s"} satisfied`,
        };
      }
      return {
        pass: false,
        score: (rules.length - problems.length) / rules.length,
        message: `the draft ${problems.length === 1 ? problems[0] : `fails ${problems.length} pattern rules:\n- ${problems.join("\n- ")}`}`,
      };
    },
  };
}

function compile(source: string, flags: string, mustMatch: boolean, field: string): CompiledRule {
  try {
    return { source, regex: new RegExp(source, flags), mustMatch };
  } catch (error) {
    throw new RefineryError(
      "invalid_config",
      `invalid regular expression ${JSON.stringify(source)}: ${error instanceof Error ? error.message : String(error)}`,
      {
        field,
        fix: "fix the pattern syntax (JavaScript RegExp); in JSON or YAML, backslashes must be doubled, e.g. \\\\d+",
        cause: error,
      },
    );
  }
}

function show(rule: CompiledRule): string {
  return `/${rule.source}/${rule.regex.flags}`;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
