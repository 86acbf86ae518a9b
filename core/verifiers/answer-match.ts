// The answer_match verifier: pulls the final answer out of a draft (PASR `<answer>` blocks,
// `\boxed{}`, GSM8K `####`, `Answer:` lines) and compares it with the expected value, numerically
// within a tolerance or as normalised text.
import { RefineryError } from "../errors.ts";
import { createBenchmarkModeVerifier } from "./answer-modes.ts";
import { truncate } from "./json-schema.ts";
import type { AnswerMatchVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";

export type AnswerSource =
  "answer_tag" | "boxed" | "hash" | "answer_line" | "whole_text" | "last_number";

export interface ExtractedAnswer {
  text: string;
  source: AnswerSource;
}

interface Marker extends ExtractedAnswer {
  index: number;
}

/**
 * The explicitly marked final answer, or undefined. An `<answer>` block wins (it is the PASR
 * output contract); otherwise the marker that comes last wins, because drafts that correct
 * themselves put the corrected answer after the first one.
 */
export function extractFinalAnswer(draft: string): ExtractedAnswer | undefined {
  const tags = [...draft.matchAll(/<answer>([\s\S]*?)(?:<\/answer>|$)/gi)];
  for (const tag of tags.reverse()) {
    const inner = (tag[1] ?? "").trim();
    if (inner === "") continue;
    const nested = lastMarker(inner);
    return nested ?? { text: inner, source: "answer_tag" };
  }
  // Markers inside <think> are reasoning, not the answer, when no <answer> block exists either.
  const marker = lastMarker(draft.replace(/<think>[\s\S]*?<\/think>/gi, ""));
  return marker && { text: marker.text, source: marker.source };
}

function lastMarker(text: string): Marker | undefined {
  const markers = [...boxedMarkers(text), ...hashMarkers(text), ...answerLineMarkers(text)];
  let best: Marker | undefined;
  for (const m of markers) if (!best || m.index >= best.index) best = m;
  return best;
}

function boxedMarkers(text: string): Marker[] {
  const out: Marker[] = [];
  for (const m of text.matchAll(/\\(?:boxed|fbox)\s*\{/g)) {
    const open = m.index + m[0].length - 1;
    const close = closingBrace(text, open);
    if (close === undefined) continue;
    const inner = text.slice(open + 1, close).trim();
    if (inner !== "") out.push({ text: inner, source: "boxed", index: m.index });
  }
  return out;
}

/** The content of the last `\boxed{}` in `text`, if any. */
export function lastBoxed(text: string): string | undefined {
  return boxedMarkers(text).at(-1)?.text;
}

function closingBrace(text: string, open: number): number | undefined {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return i;
  }
  return undefined;
}

function hashMarkers(text: string): Marker[] {
  return [...text.matchAll(/^[ \t]*####[ \t]*(\S.*?)[ \t]*$/gm)].map((m) => ({
    text: m[1] ?? "",
    source: "hash" as const,
    index: m.index,
  }));
}

// "Answer: 42", "**Final answer:** 42", "## Final Answer: 42", "The final answer is 42", and a
// label alone on its line followed by the value on the next non-empty line.
const ANSWER_LINE =
  /^[ \t>*_#-]*(?:(?:the[ \t]+)?final[ \t]+answer[ \t]+is\b[ \t]*[:：]?|(?:final[ \t]+)?answer[ \t]*[*_]*[ \t]*[:：])[ \t]*(.*)$/i;

function answerLineMarkers(text: string): Marker[] {
  const out: Marker[] = [];
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const m = ANSWER_LINE.exec(line);
    if (m) {
      let value = stripMarkdown(m[1] ?? "");
      if (value === "") {
        const next = lines.slice(i + 1).find((l) => l.trim() !== "");
        value = stripMarkdown(next ?? "");
      }
      if (value !== "") out.push({ text: value, source: "answer_line", index: offset });
    }
    offset += line.length + 1;
  }
  return out;
}

function stripMarkdown(value: string): string {
  return value
    .trim()
    .replace(/^[*_`]+|[*_`]+$/g, "")
    .trim();
}

/** Rewrites LaTeX and markdown wrappers into plain text so that numbers and words compare. */
export function cleanAnswer(text: string): string {
  let s = text.trim();
  // A boxed value inside a marked answer ("Answer: $\boxed{42}$") is the value itself.
  const boxed = boxedMarkers(s).at(-1);
  if (boxed) s = boxed.text;
  s = s
    .replace(/^\$\$([\s\S]*)\$\$$/, "$1")
    .replace(/^\\\(([\s\S]*)\\\)$/, "$1")
    .replace(/^\\\[([\s\S]*)\\\]$/, "$1")
    .replace(/\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}/g, "$1")
    .replace(/\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}/g, (_m, a: string, b: string) => {
      const num = Number(a.trim());
      const den = Number(b.trim());
      return Number.isFinite(num) && Number.isFinite(den) && den !== 0
        ? String(num / den)
        : `${a}/${b}`;
    })
    .replace(/\{,\}/g, ",")
    .replace(/\\[,!; ]/g, "")
    .replace(/\\([$%])/g, "$1")
    .replace(/\\left|\\right/g, "")
    .trim();
  // Wrappers and trailing punctuation nest in any order ("**paris**.", "$42$."), so peel until
  // nothing changes. "$42$" is inline math around a number while "$42" is a price: only paired
  // dollars are removed.
  for (let previous = ""; previous !== s;) {
    previous = s;
    s = s
      .replace(/^[*_`"'“‘]+|[*_`"'”’]+$/g, "")
      .replace(/[.;,]+$/, "")
      .replace(/^\$([^$]+)\$$/, "$1")
      .trim();
  }
  return s;
}

export interface ParsedNumber {
  value: number;
  /** The text that was read, e.g. `$1,234.50` or `3/4`. */
  raw: string;
  index: number;
}

// A sign only counts when it does not follow a word character, so "pages 3-4" reads 3 and 4,
// never -4. Thousands separators must be in groups of three so "1,2,3" stays a list. A fraction
// is integer/integer so "120 / 1.5" is not misread as 120/1.
const NUMBER =
  /(?<![\w.])([-−]?)(?:\$[ \t]?)?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)(?:[ \t]*\/[ \t]*(\d+)(?!\d|[.,]\d))?/g;

/** Every number in the text, in order, as values. Units, `$` and `%` around a number are ignored. */
export function parseNumbers(text: string): ParsedNumber[] {
  const out: ParsedNumber[] = [];
  for (const m of text.matchAll(NUMBER)) {
    const sign = m[1] === "" ? 1 : -1;
    const magnitude = Number((m[2] ?? "").replace(/,/g, ""));
    const denominator = m[3] === undefined ? 1 : Number(m[3]);
    if (!Number.isFinite(magnitude) || denominator === 0) continue;
    out.push({ value: (sign * magnitude) / denominator, raw: m[0], index: m.index });
  }
  return out;
}

/** A string is numeric when, apart from `$`, `%` and spaces, it is exactly one number. */
export function parseNumericString(text: string): number | undefined {
  const cleaned = cleanAnswer(text);
  const numbers = parseNumbers(cleaned);
  const only = numbers[0];
  if (numbers.length !== 1 || !only) return undefined;
  const rest = cleaned.replace(only.raw, "").replace(/[\s%]/g, "");
  return rest === "" ? only.value : undefined;
}

function normaliseText(text: string, caseSensitive: boolean): string {
  const s = cleanAnswer(text).replace(/\s+/g, " ");
  return caseSensitive ? s : s.toLowerCase();
}

function formatNumber(n: number): string {
  return n !== 0 && Math.abs(n) < 1e-3 ? n.toExponential() : String(n);
}

const SOURCE_TEXT: Record<AnswerSource, string> = {
  answer_tag: "the <answer> block",
  boxed: "\\boxed{}",
  hash: "the #### line",
  answer_line: "the Answer: line",
  whole_text: "the whole reply",
  last_number: "the last number in the draft",
};

const ASK_FOR_MARKER = 'end the reply with a line "Answer: <value>"';

export function createAnswerMatchVerifier(
  spec: AnswerMatchVerifierSpec,
  id: string,
  field = "verifier",
): Verifier {
  if (spec.mode === "math" || spec.mode === "choice" || spec.mode === "qa") {
    return createBenchmarkModeVerifier({ ...spec, mode: spec.mode }, id, field);
  }
  const expectedNumber =
    typeof spec.expected === "number" ? spec.expected : parseNumericString(spec.expected);
  const mode = spec.mode ?? (expectedNumber === undefined ? "exact" : "numeric");
  // An explicit numeric mode may carry units in `expected` ("80 km/h"): read its first number.
  const target =
    mode === "numeric"
      ? (expectedNumber ?? parseNumbers(cleanAnswer(String(spec.expected)))[0]?.value)
      : undefined;
  if (mode === "numeric" && target === undefined) {
    throw new RefineryError(
      "invalid_config",
      `expected ${JSON.stringify(spec.expected)} contains no number, but mode is numeric`,
      { field: `${field}.expected`, fix: 'give a number, or set mode: "exact"' },
    );
  }
  const tolerances =
    `tolerance ${formatNumber(spec.tolerance)}` +
    (spec.relativeTolerance === undefined
      ? ""
      : `, relative tolerance ${formatNumber(spec.relativeTolerance)}`);

  const base = { id, kind: "answer_match" as const, hard: spec.hard, deterministic: true };

  if (target !== undefined) {
    return {
      ...base,
      async verify(draft) {
        const marked = extractFinalAnswer(draft);
        let found: { value: number; source: AnswerSource } | undefined;
        if (marked) {
          const numbers = parseNumbers(cleanAnswer(marked.text));
          // A marker line leads with its value ("80 km/h, since 120/1.5"); an <answer> block is
          // a short solution whose conclusion comes last.
          const pick = marked.source === "answer_tag" ? numbers.at(-1) : numbers[0];
          if (!pick) {
            return fail(
              `final answer ${JSON.stringify(truncate(marked.text, 80))} in ${SOURCE_TEXT[marked.source]} ` +
                `is not a number; ${ASK_FOR_MARKER} with a number`,
            );
          }
          found = { value: pick.value, source: marked.source };
        } else {
          const last = parseNumbers(cleanAnswer(draft)).at(-1);
          if (last) found = { value: last.value, source: "last_number" };
        }
        if (!found) return fail(`no final answer found: ${ASK_FOR_MARKER}`);

        const diff = Math.abs(found.value - target);
        const ok =
          diff <= spec.tolerance ||
          (spec.relativeTolerance !== undefined &&
            diff <= spec.relativeTolerance * Math.abs(target));
        const unmarked =
          found.source === "last_number"
            ? ` (read from the last number in the draft because no final answer was marked; ${ASK_FOR_MARKER})`
            : "";
        const got = formatNumber(found.value);
        if (ok) {
          return {
            pass: true,
            score: 1,
            message: spec.revealExpected
              ? `final answer ${got} matches expected ${formatNumber(target)}${unmarked}`
              : `final answer ${got} is correct${unmarked}`,
          };
        }
        return fail(
          spec.revealExpected
            ? `final answer ${got} does not match expected ${formatNumber(target)} (${tolerances})${unmarked}`
            : `final answer ${got} is not correct${unmarked}`,
        );
      },
    };
  }

  const expectedText = normaliseText(String(spec.expected), spec.caseSensitive);
  return {
    ...base,
    async verify(draft) {
      const marked = extractFinalAnswer(draft);
      // A one-line reply is its own final answer; in longer text without a marker we cannot
      // tell the answer from the reasoning, so we ask for one instead of guessing.
      const trimmed = draft.trim();
      const found: ExtractedAnswer | undefined =
        marked ??
        (trimmed !== "" && !trimmed.includes("\n") && trimmed.length <= 200
          ? { text: trimmed, source: "whole_text" }
          : undefined);
      if (!found) return fail(`no final answer found: ${ASK_FOR_MARKER}`);
      const got = normaliseText(found.text, spec.caseSensitive);
      const shown = JSON.stringify(truncate(cleanAnswer(found.text), 80));
      if (got === expectedText) {
        return {
          pass: true,
          score: 1,
          message: spec.revealExpected
            ? `final answer ${shown} matches expected ${JSON.stringify(String(spec.expected))}`
            : `final answer ${shown} is correct`,
        };
      }
      const caseNote = spec.caseSensitive ? " (case-sensitive)" : "";
      const unmarked = found.source === "whole_text" ? `; ${ASK_FOR_MARKER}` : "";
      return fail(
        spec.revealExpected
          ? `final answer ${shown} from ${SOURCE_TEXT[found.source]} does not match expected ${JSON.stringify(String(spec.expected))}${caseNote}${unmarked}`
          : `final answer ${shown} is not correct${unmarked}`,
      );
    },
  };
}

function fail(message: string) {
  return { pass: false, score: 0, message };
}
