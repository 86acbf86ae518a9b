// The regex verifier: patterns the draft must match and patterns it must not match. Patterns are
// compiled when the verifier is built, so a typo fails the config rather than every draft. They
// run on RE2 (user-regex.ts): a draft is matched in linear time whatever the pattern.
import { RefineryError } from "../errors.ts";
import { truncate } from "./json-schema.ts";
import type { RegexVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";
import { compileUserRegex, type UserRegex } from "./user-regex.ts";

interface CompiledRule {
  regex: UserRegex;
  mustMatch: boolean;
}

export function createRegexVerifier(
  spec: RegexVerifierSpec,
  id: string,
  field = "verifier",
): Verifier {
  let flags = spec.flags ?? "";
  try {
    // Only checks the flags (and puts them in their usual order, for messages): an empty
    // pattern runs nothing.
    flags = new RegExp("", flags).flags;
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
        // Every call is independent of the previous one, whatever the flags (`y` means "at the
        // start of the draft").
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
  return { regex: compileUserRegex(source, flags, field), mustMatch };
}

function show(rule: CompiledRule): string {
  return `/${rule.regex.source}/${rule.regex.flags}`;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
