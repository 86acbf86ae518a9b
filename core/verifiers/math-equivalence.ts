// Symbolic equivalence of MATH-style answers: a small LaTeX -> mathjs rewriter, then a numeric
// comparison (numbers), a comparison at random points (expressions with variables), elementwise
// for tuples and intervals. String matching fails `\frac{1}{2}` vs `0.5` or `2\sqrt{2}` vs `\sqrt{8}`.
import type * as MathJsModule from "mathjs";
import type { MathNode } from "mathjs";

type MathJs = typeof MathJsModule;
let mathjs: Promise<MathJs> | undefined;
/** mathjs takes seconds to load on a busy machine: only evaluations that grade math load it. */
function loadMathJs(): Promise<MathJs> {
  mathjs ??= import("mathjs");
  return mathjs;
}

/** Longer answers are not parsed: mathjs on arbitrary text must stay cheap. */
const MAX_LENGTH = 300;
const REL_TOLERANCE = 1e-6;

/**
 * LaTeX to a mathjs expression, or plain text when it is not math. Decisions (docs/evaluation.md):
 * `50\%` reads as 50 (the percent sign is dropped, as the MATH reference normalisation does, so
 * it is not 0.5); `30^\circ` reads as 30; `x = 5` reads as 5 when the left side is one symbol;
 * units in `\text{...}` after a number are dropped; `1,000` is 1000 only when the whole answer is
 * a number with comma groups of three (otherwise a comma separates the items of a tuple).
 */
export function latexToMathjs(latex: string): string {
  let s = latex.trim();
  s = s.replace(/^\$+|\$+$/g, "").trim();
  s = s.replace(/^\\\(|\\\)$/g, "").replace(/^\\\[|\\\]$/g, "");
  s = s
    .replace(/\\left\s*([([{|.]|\\\{|\\lbrace)/g, "$1")
    .replace(/\\right\s*([)\]}|.]|\\\}|\\rbrace)/g, "$1");
  s = s.replace(/\\left\.|\\right\./g, "");
  s = s.replace(/\\[!,;: ]|~/g, " ").replace(/\\(?:quad|qquad)\b/g, " ");
  s = s.replace(/\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b/g, "");
  s = s.replace(/\\%|%/g, "");
  s = s.replace(/\\(?:dfrac|tfrac)(?![A-Za-z])/g, "\\frac");
  s = s.replace(/\\displaystyle\b/g, "");
  // Units or words after a value: "5 \text{ cm}" is 5; a lone "\text{odd}" stays text.
  s = s.replace(/([\d}).])\s*\\(?:text|mbox|mathrm)\s*\{[^{}]*\}\s*$/, "$1");
  s = s.replace(/\\(?:text|mbox|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}/g, "$1");
  if (/^-?\d{1,3}(,\d{3})+(\.\d+)?$/.test(s.replace(/\s+/g, ""))) s = s.replace(/[,\s]/g, "");
  s = s.replace(/\{,\}/g, "");
  s = rewriteCommands(s);
  s = s
    .replace(/\\cdot|\\times/g, "*")
    .replace(/\\div/g, "/")
    .replace(/\\pi\b/g, " pi ")
    .replace(/\\infty\b/g, " Infinity ")
    .replace(/\\le(?:q)?\b/g, "<=")
    .replace(/\\ge(?:q)?\b/g, ">=")
    .replace(/\\\{|\\lbrace\b/g, "{")
    .replace(/\\\}|\\rbrace\b/g, "}")
    .replace(/\\ln\b/g, " log ")
    .replace(/\\(?:sin|cos|tan|log|exp)\b/g, (m) => ` ${m.slice(1)} `)
    .replace(/\s+/g, " ")
    .trim();
  // "x = 5" (one symbol on the left): the value is the right side.
  const equation = /^[A-Za-z]\w*\s*=\s*([^=<>]+)$/.exec(s);
  if (equation?.[1]) s = equation[1].trim();
  return s;
}

/** \frac{a}{b}, \frac12, \sqrt{x}, \sqrt[n]{x} and ^{...}: arguments are groups or one token. */
function rewriteCommands(input: string): string {
  let out = "";
  let i = 0;
  const arg = (): string => {
    while (input[i] === " ") i++;
    if (input[i] === "{") {
      let depth = 0;
      const start = i;
      for (; i < input.length; i++) {
        if (input[i] === "{") depth++;
        else if (input[i] === "}" && --depth === 0) break;
      }
      const inner = input.slice(start + 1, i);
      i++;
      return rewriteCommands(inner);
    }
    if (input[i] === "\\") {
      const m = /^\\[A-Za-z]+/.exec(input.slice(i));
      const name = m ? m[0] : input.slice(i, i + 2);
      i += name.length;
      return rewriteCommands(name);
    }
    return input[i++] ?? "";
  };
  while (i < input.length) {
    const rest = input.slice(i);
    if (rest.startsWith("\\frac")) {
      i += 5;
      const a = arg();
      const b = arg();
      out += `((${a})/(${b}))`;
    } else if (rest.startsWith("\\sqrt")) {
      i += 5;
      while (input[i] === " ") i++;
      let index: string | undefined;
      if (input[i] === "[") {
        const close = input.indexOf("]", i);
        index = input.slice(i + 1, close);
        i = close + 1;
      }
      const a = arg();
      out += index === undefined ? `sqrt(${a})` : `nthRoot(${a}, ${index})`;
    } else if (rest.startsWith("^")) {
      i += 1;
      out += `^(${arg()})`;
    } else {
      out += input[i];
      i++;
    }
  }
  return out;
}

type Shape = { kind: "tuple" | "interval" | "set"; open: string; close: string; items: string[] };

/** Splits "(1, 2)", "[0, \infty)" and "{1, 2}" into their items at top-level commas. */
function shapeOf(s: string): Shape | undefined {
  const open = s[0];
  const close = s.at(-1);
  if (!open || !close || s.length < 2) return undefined;
  const inner = s.slice(1, -1);
  const items = splitTopLevel(inner);
  if (open === "{" && close === "}") return { kind: "set", open, close, items };
  if ("([".includes(open) && ")]".includes(close) && items.length > 1) {
    const kind = open === "(" && close === ")" ? "tuple" : "interval";
    return { kind, open, close, items };
  }
  return undefined;
}

function splitTopLevel(s: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      items.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(s.slice(start).trim());
  return items;
}

/** True when two answers are the same value (or the same tuple, interval or set of values). */
export async function mathEquivalent(a: string, b: string): Promise<boolean> {
  if (a.length > MAX_LENGTH || b.length > MAX_LENGTH) return plainEqual(a, b);
  const x = latexToMathjs(a);
  const y = latexToMathjs(b);
  if (plainEqual(x, y)) return true;
  const { parse } = await loadMathJs();
  return structuredEqual(x, y, parse);
}

type Parse = MathJs["parse"];

function structuredEqual(x: string, y: string, parse: Parse): boolean {
  const sx = shapeOf(x);
  const sy = shapeOf(y);
  if (sx || sy) {
    if (!sx || !sy || sx.items.length !== sy.items.length) return false;
    if (sx.kind === "set" && sy.kind === "set") {
      const left = [...sy.items];
      return sx.items.every((item) => {
        const k = left.findIndex((other) => valueEqual(item, other, parse));
        return k >= 0 && left.splice(k, 1).length === 1;
      });
    }
    if (sx.open !== sy.open || sx.close !== sy.close) return false;
    return sx.items.every((item, k) => valueEqual(item, sy.items[k] ?? "", parse));
  }
  return valueEqual(x, y, parse);
}

function valueEqual(x: string, y: string, parse: Parse): boolean {
  if (plainEqual(x, y)) return true;
  let nx: MathNode;
  let ny: MathNode;
  try {
    nx = parse(x);
    ny = parse(y);
  } catch {
    return false;
  }
  // A reply is untrusted text: only arithmetic, symbols and the known functions are evaluated
  // (no assignments, property access, or mathjs functions such as createUnit that change state).
  if (!isPlainMath(nx) || !isPlainMath(ny)) return false;
  const symbols = [
    ...new Set(
      [nx, ny].flatMap((n) =>
        n
          .filter((node) => (node as { isSymbolNode?: boolean }).isSymbolNode === true)
          .map((node) => (node as unknown as { name: string }).name),
      ),
    ),
  ].filter((name) => !KNOWN_NAMES.has(name));
  // Points chosen so that sqrt, log and division behave; five agreeing points are evidence
  // enough for answers of this size (a polynomial identity test).
  const points =
    symbols.length === 0
      ? [{}]
      : [0.37, 1.21, 2.03, 3.14, 0.73].map((v, k) =>
          Object.fromEntries(symbols.map((name, j) => [name, v + 0.11 * j * (k + 1)])),
        );
  try {
    const cx = nx.compile();
    const cy = ny.compile();
    // Infinity only equals Infinity when both answers say so: 10^{10^{10}} and 10^{10^{11}} both
    // overflow to Infinity without being the same number.
    const infinite = x.includes("Infinity") && y.includes("Infinity");
    return points.every((scope) =>
      closeEnough(cx.evaluate({ ...scope }), cy.evaluate({ ...scope }), infinite),
    );
  } catch {
    return false;
  }
}

const KNOWN_NAMES = new Set([
  "pi",
  "e",
  "Infinity",
  "sqrt",
  "nthRoot",
  "sin",
  "cos",
  "tan",
  "log",
  "ln",
  "exp",
  "i",
]);

const PLAIN_NODES = new Set([
  "ConstantNode",
  "SymbolNode",
  "OperatorNode",
  "ParenthesisNode",
  "FunctionNode",
]);
const FUNCTIONS = new Set(["sqrt", "nthRoot", "sin", "cos", "tan", "log", "exp", "abs"]);

function isPlainMath(root: MathNode): boolean {
  return root
    .filter(() => true)
    .every((node) => {
      if (!PLAIN_NODES.has(node.type)) return false;
      if (node.type !== "FunctionNode") return true;
      const fn = (node as unknown as { fn?: { name?: unknown } }).fn;
      return typeof fn?.name === "string" && FUNCTIONS.has(fn.name);
    });
}

function closeEnough(p: unknown, q: unknown, infinite: boolean): boolean {
  if (typeof p !== "number" || typeof q !== "number") return false;
  if (Number.isNaN(p) || Number.isNaN(q)) return false;
  if (!Number.isFinite(p) || !Number.isFinite(q)) return infinite && p === q;
  return Math.abs(p - q) <= REL_TOLERANCE * Math.max(1, Math.abs(p), Math.abs(q));
}

function plainEqual(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/\s+/g, "").replace(/\.$/, "").toLowerCase();
  return norm(a) === norm(b);
}
