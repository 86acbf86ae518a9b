// Regular expressions written by users (regex verifiers, JSON Schema `pattern`) run on RE2
// (re2js): matching takes time linear in the text, so no pattern, however written, can keep a run
// busy for minutes the way `(a+)+$` does on a backtracking engine. The price: no lookaround and
// no backreferences; such a pattern is refused when the config is checked, naming its field.
import { RE2JS } from "re2js";
import { RefineryError, type ErrorCode } from "../errors.ts";

/** What a compiled user pattern offers: a test, and the first match with its index. */
export interface UserRegex {
  /** The pattern as the user wrote it. */
  readonly source: string;
  /** The JavaScript flags as the user wrote them. */
  readonly flags: string;
  test(text: string): boolean;
  exec(text: string): { 0: string; index: number } | null;
}

/** How to write patterns, for every refusal. */
export const RE2_FIX =
  "patterns run on RE2, which matches in linear time: lookahead (?=…) (?!…), lookbehind (?<=…) " +
  "(?<!…) and backreferences (\\1, \\k<name>) are not supported, nor are repeat counts above " +
  "1000; rewrite the pattern without them (a forbidden phrase belongs in mustNotMatch rather " +
  "than in a negative lookahead); in JSON or YAML, backslashes must be doubled, e.g. \\\\d+";

/**
 * Compiles `source` with JavaScript flags on RE2. `i`, `m` and `s` keep their meaning; `u` and `v`
 * change nothing (RE2 always matches by code point); `g` and `d` mean nothing for one test; `y`
 * keeps its meaning for a test from the start of the text: the match must begin there. Throws a
 * RefineryError with `code` naming `field` when RE2 cannot compile the pattern.
 */
export function compileUserRegex(
  source: string,
  flags: string,
  field: string,
  code: ErrorCode = "invalid_config",
): UserRegex {
  const refuse = (reason: string, cause?: unknown) =>
    new RefineryError(code, `invalid regular expression ${JSON.stringify(source)}: ${reason}`, {
      field,
      fix: RE2_FIX,
      cause,
    });
  // RE2's translation of JavaScript syntax reads `\k<name>` as the letter k; in JavaScript it is
  // a backreference, so it is refused rather than quietly matched as text.
  if (hasNamedBackreference(source)) throw refuse("backreferences are not supported");
  if (flags.includes("v") && /&&|--|\\q\{/.test(source))
    throw refuse("the set operations of the v flag are not supported");
  let re: RE2JS;
  try {
    let translated = RE2JS.translateRegExp(source);
    if (flags.includes("y")) translated = `\\A(?:${translated})`;
    re = RE2JS.compile(translated, re2Flags(flags));
  } catch (err) {
    throw refuse(describe(err), err);
  }
  return {
    source,
    flags,
    test: (text) => re.test(text),
    exec: (text) => {
      const m = re.exec(text) as (string[] & { index: number }) | null;
      return m ? { 0: m[0] ?? "", index: m.index } : null;
    },
  };
}

/** `\k<` outside an escaped backslash, by one scan (a regex for it would backtrack on `\\\\…`). */
function hasNamedBackreference(source: string): boolean {
  for (let i = 0; i < source.length; i++) {
    if (source[i] !== "\\") continue;
    if (source[i + 1] === "k" && source[i + 2] === "<") return true;
    i++; // the escaped character
  }
  return false;
}

function re2Flags(flags: string): number {
  let out = 0;
  if (flags.includes("i")) out |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes("m")) out |= RE2JS.MULTILINE;
  if (flags.includes("s")) out |= RE2JS.DOTALL;
  return out;
}

/** RE2's reason, with the usual culprits named in words. */
function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (/`\(\?[=!]/.test(text)) return "lookahead is not supported";
  if (/`\(\?<[=!]/.test(text)) return "lookbehind is not supported";
  if (/invalid escape sequence: `\\[1-9]/.test(text)) return "backreferences are not supported";
  return text.replace(/^error parsing regexp: /, "");
}
