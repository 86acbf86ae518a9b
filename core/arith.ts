// Safe arithmetic for drafts and tasks: a tiny recursive-descent parser (numbers, + - * /, unary
// minus, parentheses; no eval, no Function) shared by the simulated model and arithmetic checks.

export type ArithmeticAst =
  | {
      type: "num";
      value: number;
      /** The literal as written, e.g. `3.50`: its decimals say how precisely it was written. */
      text: string;
    }
  | { type: "neg"; arg: ArithmeticAst }
  | { type: "bin"; op: "+" | "-" | "*" | "/"; left: ArithmeticAst; right: ArithmeticAst };

/** One binary operation as evaluated, in post-order. */
export interface ArithmeticStep {
  left: number;
  op: string;
  right: number;
  result: number;
}

// Parsing is recursive; the cap keeps a pathological draft from costing time or stack.
const MAX_EXPRESSION_LENGTH = 500;

function tokenize(expression: string): string[] | undefined {
  const tokens: string[] = [];
  const re = /\s*(\d+(?:\.\d+)?|\.\d+|[-+*/()])/y;
  let index = 0;
  while (index < expression.length) {
    if (/^\s*$/.test(expression.slice(index))) break;
    re.lastIndex = index;
    const m = re.exec(expression);
    if (!m || m[1] === undefined) return undefined;
    tokens.push(m[1]);
    index = re.lastIndex;
  }
  return tokens;
}

/** Parses `+ - * /`, unary signs and parentheses over plain decimal numbers; undefined otherwise. */
export function parseArithmetic(expression: string): ArithmeticAst | undefined {
  if (expression.length > MAX_EXPRESSION_LENGTH) return undefined;
  const tokens = tokenize(expression);
  if (!tokens || tokens.length === 0) return undefined;
  let pos = 0;
  const peek = (): string | undefined => tokens[pos];

  const parseExpr = (): ArithmeticAst | undefined => {
    let left = parseTerm();
    while (left && (peek() === "+" || peek() === "-")) {
      const op = tokens[pos++] as "+" | "-";
      const right = parseTerm();
      if (!right) return undefined;
      left = { type: "bin", op, left, right };
    }
    return left;
  };
  const parseTerm = (): ArithmeticAst | undefined => {
    let left = parseUnary();
    while (left && (peek() === "*" || peek() === "/")) {
      const op = tokens[pos++] as "*" | "/";
      const right = parseUnary();
      if (!right) return undefined;
      left = { type: "bin", op, left, right };
    }
    return left;
  };
  const parseUnary = (): ArithmeticAst | undefined => {
    const token = peek();
    if (token === "-" || token === "+") {
      pos++;
      const arg = parseUnary();
      if (!arg) return undefined;
      return token === "-" ? { type: "neg", arg } : arg;
    }
    return parsePrimary();
  };
  const parsePrimary = (): ArithmeticAst | undefined => {
    const token = tokens[pos++];
    if (token === undefined) return undefined;
    if (token === "(") {
      const inner = parseExpr();
      if (!inner || tokens[pos++] !== ")") return undefined;
      return inner;
    }
    const value = Number(token);
    return Number.isFinite(value) ? { type: "num", value, text: token } : undefined;
  };

  const ast = parseExpr();
  return ast && pos === tokens.length ? ast : undefined;
}

/**
 * Evaluates in post-order, recording each binary operation in `steps`. `perturb` adds `delta` to
 * the result of step number `step` (0-based), so a caller can write a plausible slip that
 * propagates the way a real one would (the simulated model's wrong drafts).
 */
export function evaluateAst(
  ast: ArithmeticAst,
  steps: ArithmeticStep[] = [],
  perturb?: { step: number; delta: number },
): number | undefined {
  switch (ast.type) {
    case "num":
      return ast.value;
    case "neg": {
      const v = evaluateAst(ast.arg, steps, perturb);
      return v === undefined ? undefined : -v;
    }
    case "bin": {
      const l = evaluateAst(ast.left, steps, perturb);
      const r = evaluateAst(ast.right, steps, perturb);
      if (l === undefined || r === undefined) return undefined;
      if (ast.op === "/" && r === 0) return undefined;
      let result = ast.op === "+" ? l + r : ast.op === "-" ? l - r : ast.op === "*" ? l * r : l / r;
      if (perturb && perturb.step === steps.length) result += perturb.delta;
      if (!Number.isFinite(result)) return undefined;
      steps.push({ left: l, op: ast.op, right: r, result });
      return result;
    }
  }
}

/**
 * Evaluates an arithmetic expression: numbers, + - * /, unary minus, parentheses, usual
 * precedence. Returns undefined for anything else, division by zero or a non-finite result.
 */
export function evaluateArithmetic(expression: string): number | undefined {
  const normalized = expression
    .replace(/×|(?<=[\d)\s])x(?=[\s\d(])/g, "*")
    .replace(/÷/g, "/")
    .replace(/−/g, "-");
  const ast = parseArithmetic(normalized);
  return ast ? evaluateAst(ast, []) : undefined;
}

/** A closed range of values: what a number written to a limited precision may stand for. */
export interface Interval {
  lo: number;
  hi: number;
}

/**
 * Interval evaluation: `literal` says which range each written number stands for (a point for an
 * exact number, ± half a unit in the last place for a rounded one). Undefined when a divisor's
 * range contains zero or a bound is not finite.
 */
export function evaluateInterval(
  ast: ArithmeticAst,
  literal: (node: Extract<ArithmeticAst, { type: "num" }>) => Interval,
): Interval | undefined {
  switch (ast.type) {
    case "num":
      return literal(ast);
    case "neg": {
      const v = evaluateInterval(ast.arg, literal);
      return v && { lo: -v.hi, hi: -v.lo };
    }
    case "bin": {
      const a = evaluateInterval(ast.left, literal);
      const b = evaluateInterval(ast.right, literal);
      if (!a || !b) return undefined;
      let out: Interval;
      if (ast.op === "+") out = { lo: a.lo + b.lo, hi: a.hi + b.hi };
      else if (ast.op === "-") out = { lo: a.lo - b.hi, hi: a.hi - b.lo };
      else {
        if (ast.op === "/" && b.lo <= 0 && b.hi >= 0) return undefined;
        const ends =
          ast.op === "*"
            ? [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
            : [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi];
        out = { lo: Math.min(...ends), hi: Math.max(...ends) };
      }
      return Number.isFinite(out.lo) && Number.isFinite(out.hi) ? out : undefined;
    }
  }
}
