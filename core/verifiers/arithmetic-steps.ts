// The arithmetic_steps verifier: finds every computation a draft claims (`17 * 23 = 391`,
// `Step 2: (12 + 8) * 3 = 60`, `120 / 1.5 = 80 km/h`) and recomputes it, like CRITIC checking a
// draft with an interpreter. It needs no reference answer, so it can run on any task.
import {
  evaluateAst,
  evaluateInterval,
  parseArithmetic,
  type ArithmeticAst,
  type Interval,
} from "../arith.ts";
import type { ArithmeticStepsVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";

/** One claimed computation `<lhs> = <rhs>` and whether it holds. */
export interface ArithmeticStepCheck {
  /** 1-based line of the draft. */
  line: number;
  /** The claim as written, e.g. `17 * 23 = 393` (units and prose around it left out). */
  text: string;
  lhs: string;
  rhs: string;
  /** The left side's exact value; undefined when it divides by zero. */
  actual: number | undefined;
  /** The value the draft wrote on the right side. */
  claimed: number;
  correct: boolean;
}

export interface ArithmeticCheckOptions {
  /** Absolute tolerance on top of the precision the draft wrote. Default 1e-6. */
  tolerance?: number;
}

const DEFAULT_TOLERANCE = 1e-6;

// Floating-point noise only: a slip of 1 in 123456789000 must still be caught.
const RELATIVE_EPSILON = 1e-12;

// The longest expression considered on either side of an `=`; the parser refuses longer ones.
const MAX_SIDE_LENGTH = 500;

// Characters an expression may be written with before normalisation; `x` and `×` only count as
// operators between two operands.
const EXPRESSION_CHAR = /[\d.,\s()+\-*/×÷x]/;

// An `=` that claims equality: not `==`, `<=`, `>=`, `!=`, `=>`, `:=`, `+=`, ... `≈` and `~=`
// claim equality at the precision written.
const SEPARATOR = /~=|≈|(?<![=<>!:+\-*/^%&|])=(?![=>])/g;

/**
 * Every claimed computation in the draft, checked. A claim's left side must contain an operator;
 * results are compared at the precision the draft wrote them (`10 / 3 = 3.33` holds), and a
 * rounded result carried into a later step keeps its rounding (`3.33 * 3 = 10` holds after it).
 * Fenced code blocks are skipped: code has its own semantics (integer division, assignment).
 */
export function checkArithmeticSteps(
  draft: string,
  options: ArithmeticCheckOptions = {},
): ArithmeticStepCheck[] {
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const checks: ArithmeticStepCheck[] = [];
  // Results the draft rounded, by the text it wrote them as, so later steps may use them.
  const rounded = new Set<string>();
  let inFence = false;
  draft.split("\n").forEach((rawLine, index) => {
    if (/^\s*(```|~~~)/.test(rawLine)) {
      inFence = !inFence;
      return;
    }
    if (inFence || !/[=≈]/.test(rawLine)) return;
    const line = normaliseLine(rawLine);
    const separators = [...line.matchAll(SEPARATOR)];
    const segments: string[] = [];
    let from = 0;
    for (const sep of separators) {
      segments.push(line.slice(from, sep.index));
      from = sep.index + sep[0].length;
    }
    segments.push(line.slice(from));
    separators.forEach((sep, i) => {
      const lhs = leftSide(segments[i] ?? "");
      if (!lhs) return;
      const rhs = rightSide(segments[i + 1] ?? "", sep[0] !== "=");
      if (!rhs) return;
      const check = checkClaim(lhs, rhs, sep[0], index + 1, tolerance, rounded);
      if (check) checks.push(check);
    });
  });
  return checks;
}

/** `line 3: step "17 * 23 = 393" is wrong: 17 * 23 = 391`, for reviser feedback. */
export function describeWrongStep(step: ArithmeticStepCheck): string {
  const where = `line ${step.line}: step ${JSON.stringify(step.text)} is wrong: `;
  if (step.actual === undefined) return `${where}${step.lhs} divides by zero`;
  const decimals = Math.max(6, decimalsOf(step.rhs));
  const claimedNote =
    parseArithmetic(toParserInput(step.rhs.replace(/%$/, "")) ?? "")?.type === "num"
      ? ""
      : `, not ${formatValue(step.claimed, decimals)}`;
  return `${where}${step.lhs} = ${formatValue(step.actual, decimals)}${claimedNote}`;
}

export function createArithmeticStepsVerifier(
  spec: ArithmeticStepsVerifierSpec,
  id: string,
): Verifier {
  return {
    id,
    kind: "arithmetic_steps",
    hard: spec.hard,
    deterministic: true,
    async verify(draft) {
      const steps = checkArithmeticSteps(draft, { tolerance: spec.tolerance });
      if (steps.length === 0) {
        return { pass: true, score: 1, message: "no arithmetic steps to check" };
      }
      const wrong = steps.filter((s) => !s.correct);
      const total = `${steps.length} arithmetic step${steps.length === 1 ? "" : "s"}`;
      if (wrong.length === 0) {
        return {
          pass: true,
          score: 1,
          message:
            steps.length === 1 ? "the arithmetic step is correct" : `all ${total} are correct`,
        };
      }
      // A long list buries the first slip, which is usually the one that matters.
      const listed = wrong.slice(0, 5).map(describeWrongStep);
      if (wrong.length > listed.length) listed.push(`and ${wrong.length - listed.length} more`);
      return {
        pass: false,
        score: (steps.length - wrong.length) / steps.length,
        message: `${wrong.length} of ${total} ${wrong.length === 1 ? "is" : "are"} wrong: ${listed.join("; ")}`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reading claims.

/** Rewrites markdown, LaTeX and typography so that only plain arithmetic is left to read. */
function normaliseLine(line: string): string {
  return (
    line
      // A list marker ("- ", "1. ", "a) ") is not a minus sign or a number.
      .replace(/^\s*(?:[-*+•]|\d{1,3}[.)]|[a-zA-Z][.)])\s+/, "")
      .replace(/\*\*|__|`/g, "")
      .replace(/\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}/g, "($1)/($2)")
      .replace(/\\(?:times|cdot)(?![a-zA-Z])/g, "×")
      .replace(/\\div(?![a-zA-Z])/g, "÷")
      .replace(/\\approx(?![a-zA-Z])/g, "≈")
      .replace(/\\(?:left|right)(?![a-zA-Z])/g, "")
      .replace(/\{,\}/g, ",")
      .replace(/\\[,;:! ]|\\[()[\]]/g, " ")
      // Currency signs and `$…$` math delimiters carry no arithmetic.
      .replace(/\\?[$€£]/g, "")
      .replace(/[−–](?=\s*[\d(])/g, "-")
      .replace(/[·⋅∙]/g, "×")
      .replace(/∗/g, "*")
  );
}

interface Side {
  text: string;
  ast: ArithmeticAst;
}

/** Turns a candidate into parser input, or undefined when letters or stray marks remain. */
function toParserInput(candidate: string): string | undefined {
  const normalised = candidate
    .replace(/(\d),(?=\d{3}(?!\d))/g, "$1")
    .replace(/(?<=[\d)]\s*)[x×](?=\s*[\d(])/g, "*")
    .replace(/÷/g, "/");
  return /[^\d.\s()+\-*/]/.test(normalised) ? undefined : normalised;
}

// Dates, phone numbers, ISBNs and zero-padded codes join digit groups with unspaced hyphens;
// they are identifiers, never subtraction: 2024-01-02, 555-123-4567, 555-1234, 07-15.
function looksLikeIdentifier(text: string): boolean {
  return (
    /\d-\d+-\d/.test(text) ||
    /(?<![\d.])\d+-0\d/.test(text) ||
    /(?<![\d.])\d{3}-\d{4}(?![\d.])/.test(text)
  );
}

function binaryOps(ast: ArithmeticAst): number {
  if (ast.type === "num") return 0;
  if (ast.type === "neg") return binaryOps(ast.arg);
  return 1 + binaryOps(ast.left) + binaryOps(ast.right);
}

/**
 * The expression that ends a segment, e.g. `(12 + 8) * 3` in `Step 2: (12 + 8) * 3 `. The longest
 * readable suffix wins, but never one that starts inside a token or right after an operand or
 * operator it could not read (`2x + 3` must not become `3`).
 */
function leftSide(segment: string): Side | undefined {
  let start = segment.length;
  while (start > 0 && EXPRESSION_CHAR.test(segment[start - 1] ?? "")) start--;
  start = Math.max(start, segment.length - MAX_SIDE_LENGTH);
  for (let i = start; i < segment.length; i++) {
    const first = segment[i] ?? "";
    if (/\s/.test(first)) continue;
    const previous = segment[i - 1];
    if (previous !== undefined && !/[\s([{"']/.test(previous)) continue;
    const before = segment.slice(0, i).trimEnd();
    if (/[\d)\]+\-*/×÷^]$|(?:^|[\s\d)])x$/.test(before)) continue;
    if (/[*/×÷x]/.test(first) || /^[+-]\s/.test(segment.slice(i, i + 2))) continue;
    const text = segment.slice(i).trim();
    const input = toParserInput(text);
    if (input === undefined) continue;
    if (looksLikeIdentifier(input)) return undefined;
    const ast = parseArithmetic(input);
    if (!ast) continue;
    // A bare number ("x = 5") claims nothing about arithmetic.
    return binaryOps(ast) > 0 ? { text, ast } : undefined;
  }
  return undefined;
}

interface RightSide extends Side {
  /** `75%` may stand for 0.75. */
  percent: boolean;
  /** `≈` or `~`: integers are rounded too. */
  approximate: boolean;
}

/**
 * The value that starts a segment: `80` in ` 80 km/h`, `391 + 4` in ` 391 + 4 `. Units and prose
 * after it are ignored; a side that continues with an operator it cannot read is no claim.
 */
function rightSide(segment: string, approximateSeparator: boolean): RightSide | undefined {
  let start = segment.length - segment.trimStart().length;
  let approximate = approximateSeparator;
  if (segment[start] === "~") {
    approximate = true;
    start++;
    while (/\s/.test(segment[start] ?? "")) start++;
  }
  if (!/[\d.(+-]/.test(segment[start] ?? "")) return undefined;
  let end = start;
  while (end < segment.length && EXPRESSION_CHAR.test(segment[end] ?? "")) end++;
  end = Math.min(end, start + MAX_SIDE_LENGTH);
  for (let stop = end; stop > start; stop--) {
    if (/\s/.test(segment[stop - 1] ?? "")) continue;
    const after = segment.slice(stop);
    if (/^\d|^[.,]\d/.test(after)) continue;
    const text = segment.slice(start, stop);
    const input = toParserInput(text);
    if (input === undefined) continue;
    if (looksLikeIdentifier(input)) return undefined;
    const ast = parseArithmetic(input);
    if (!ast) continue;
    // `7 / 2 = 3 r 1` and `= 5:30` are not plain equalities; `= 5 ^ 2` goes on unreadably.
    if (/^\s*[-+*/×÷^√!²³]|^:\d|^\s*(?:r|rem|remainder)\s*\d/i.test(after)) return undefined;
    // `= 3x` is algebra (a variable), while `= 80km` carries a unit.
    if (/^[a-zA-Z](?![a-zA-Z])/.test(after)) return undefined;
    const percent = /^\s*%/.test(after);
    return { text: percent ? `${text}%` : text, ast, percent, approximate };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Checking claims.

function decimalsOf(text: string): number {
  const m = /\.(\d+)/.exec(text);
  return m?.[1]?.length ?? 0;
}

/** What a number written with `text`'s decimals may stand for: ± half a unit in the last place. */
function roundedInterval(value: number, text: string): Interval {
  const half = 0.5 * 10 ** -decimalsOf(text);
  return { lo: value - half, hi: value + half };
}

function point(value: number): Interval {
  return { lo: value, hi: value };
}

function overlaps(a: Interval, b: Interval, tolerance: number): boolean {
  const scale = Math.max(1, Math.abs(a.lo), Math.abs(a.hi), Math.abs(b.lo), Math.abs(b.hi));
  const slack = tolerance + RELATIVE_EPSILON * scale;
  return a.lo - slack <= b.hi && b.lo - slack <= a.hi;
}

function checkClaim(
  lhs: Side,
  rhs: RightSide,
  separator: string,
  line: number,
  tolerance: number,
  rounded: Set<string>,
): ArithmeticStepCheck | undefined {
  const claimed = evaluateAst(rhs.ast);
  if (claimed === undefined) return undefined;
  const actual = evaluateAst(lhs.ast);
  const base = {
    line,
    text: `${lhs.text} ${separator} ${rhs.text}`,
    lhs: lhs.text,
    rhs: rhs.text,
    actual,
    claimed,
  };
  if (actual === undefined) return { ...base, correct: false };

  // Exact on the left, except numbers an earlier step rounded; on the right, a decimal stands
  // for anything that rounds to it, an integer only when the claim says it is approximate.
  const left =
    evaluateInterval(lhs.ast, (n) =>
      rounded.has(n.text) ? roundedInterval(n.value, n.text) : point(n.value),
    ) ?? point(actual);
  const right =
    evaluateInterval(rhs.ast, (n) =>
      rhs.approximate || n.text.includes(".") ? roundedInterval(n.value, n.text) : point(n.value),
    ) ?? point(claimed);
  const candidates = rhs.percent ? [right, { lo: right.lo / 100, hi: right.hi / 100 }] : [right];
  const correct = candidates.some((c) => overlaps(left, c, tolerance));
  // Any difference beyond float noise means the draft rounded, even one within the tolerance.
  const roundedHere = Math.abs(actual - claimed) > RELATIVE_EPSILON * Math.max(1, Math.abs(actual));
  if (correct && rhs.ast.type === "num" && roundedHere) {
    rounded.add(rhs.ast.text);
  }
  return { ...base, correct };
}

/** Enough decimals to show the slip, without float noise. */
function formatValue(value: number, decimals: number): string {
  if (Number.isInteger(value)) return String(value);
  if (Math.abs(value) < 10 ** -decimals) return value.toPrecision(6);
  return String(Number(value.toFixed(Math.min(decimals, 20))));
}
