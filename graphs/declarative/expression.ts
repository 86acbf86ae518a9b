// The condition language of declarative graphs: `verdicts.allHardPass and iteration < 3`.
// Text is parsed by jsep into an AST, checked against a whitelist (operators, functions, the
// names of the scope) and evaluated here by a small tree walker: nothing reaches eval/Function,
// member access only reads own data properties, and `__proto__`/`constructor`/`prototype` are
// refused when the expression is compiled and again when it runs.
import jsep from "jsep";

export type Value = null | boolean | number | string | Value[] | { [key: string]: Value };

/** A parse or check error; `position` is the 0-based character where parsing failed. */
export class ExpressionError extends Error {
  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(message);
    this.name = "ExpressionError";
  }
}

// jsep's operator tables are process-wide; this module is their only user. Word operators bind
// like their symbolic twins: `or` = `||`, `and` = `&&`, `in` with the relational operators.
jsep.addBinaryOp("or", 1);
jsep.addBinaryOp("and", 2);
jsep.addBinaryOp("in", 7);
jsep.addUnaryOp("not");

const BINARY = new Set([
  "or",
  "||",
  "and",
  "&&",
  "??",
  "==",
  "!=",
  "===",
  "!==",
  "<",
  "<=",
  ">",
  ">=",
  "in",
  "+",
  "-",
  "*",
  "/",
  "%",
]);
const UNARY = new Set(["not", "!", "-", "+"]);
const WORD_OPERATORS = new Set(["and", "or", "not", "in"]);
/** Names that lead out of plain data into JavaScript's object machinery. */
export const BLOCKED_PROPERTIES = new Set(["__proto__", "constructor", "prototype"]);
const MAX_LENGTH = 2_000;
const MAX_DEPTH = 64;

type Fn = { arity: [number, number]; call: (...args: Value[]) => Value };
const str = (v: Value): string =>
  v === null
    ? ""
    : typeof v === "string"
      ? v
      : typeof v === "object"
        ? JSON.stringify(v)
        : String(v);
const num = (v: Value): number | null => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
};
const finite = (n: number): number | null => (Number.isFinite(n) ? n : null);

/** The only functions an expression may call: pure, total, and bounded by their input. */
export const FUNCTIONS: Record<string, Fn> = {
  len: {
    arity: [1, 1],
    call: (v) =>
      typeof v === "string" || Array.isArray(v)
        ? v.length
        : v && typeof v === "object"
          ? Object.keys(v).length
          : 0,
  },
  lower: { arity: [1, 1], call: (v) => str(v).toLowerCase() },
  upper: { arity: [1, 1], call: (v) => str(v).toUpperCase() },
  trim: { arity: [1, 1], call: (v) => str(v).trim() },
  contains: {
    arity: [2, 2],
    call: (hay, needle) =>
      Array.isArray(hay)
        ? hay.some((x) => equals(x, needle))
        : typeof hay === "string"
          ? hay.includes(str(needle))
          : false,
  },
  startsWith: { arity: [2, 2], call: (s, p) => str(s).startsWith(str(p)) },
  endsWith: { arity: [2, 2], call: (s, p) => str(s).endsWith(str(p)) },
  words: { arity: [1, 1], call: (s) => str(s).split(/\s+/).filter(Boolean).length },
  round: {
    arity: [1, 2],
    call: (v, digits = 0) => {
      const n = num(v);
      const d = Math.max(0, Math.min(10, Math.trunc(num(digits) ?? 0)));
      return n === null ? null : Math.round(n * 10 ** d) / 10 ** d;
    },
  },
  abs: { arity: [1, 1], call: (v) => (num(v) === null ? null : Math.abs(num(v) as number)) },
  min: { arity: [1, 16], call: (...vs) => minMax(vs, Math.min) },
  max: { arity: [1, 16], call: (...vs) => minMax(vs, Math.max) },
  str: { arity: [1, 1], call: (v) => str(v) },
  num: { arity: [1, 1], call: (v) => num(v) },
};

function minMax(vs: Value[], pick: (...n: number[]) => number): Value {
  const ns = vs.map(num);
  return ns.some((n) => n === null) ? null : pick(...(ns as number[]));
}

/**
 * What names an expression may use: a root is either a leaf (`iteration`), an object whose
 * fields are listed (`verdicts.allHardPass`: a typo is a compile error), or `"open"` (any key,
 * e.g. `vars.*`, checked only when the expression runs).
 */
export type ScopeShape = "leaf" | "open" | { [field: string]: ScopeShape };

export interface CompiledExpression {
  source: string;
  ast: jsep.Expression;
  evaluate(scope: Record<string, Value>): Value;
  /** Evaluates and converts to a boolean (JavaScript truthiness over plain data). */
  test(scope: Record<string, Value>): boolean;
}

/** Parses and checks an expression; throws ExpressionError (with a position when parsing failed). */
export function compileExpression(
  source: string,
  shape?: Record<string, ScopeShape>,
): CompiledExpression {
  if (typeof source !== "string" || source.trim() === "")
    throw new ExpressionError("expected a non-empty expression");
  if (source.length > MAX_LENGTH)
    throw new ExpressionError(`expression is longer than ${MAX_LENGTH} characters`);
  let ast: jsep.Expression;
  try {
    ast = jsep(source);
  } catch (err) {
    const e = err as Error & { index?: number; description?: string };
    throw new ExpressionError(e.description ?? e.message, e.index);
  }
  check(ast, shape, 0);
  return {
    source,
    ast,
    evaluate: (scope) => evaluate(ast, scope),
    test: (scope) => truthy(evaluate(ast, scope)),
  };
}

function check(
  node: jsep.Expression,
  shape: Record<string, ScopeShape> | undefined,
  depth: number,
): void {
  if (depth > MAX_DEPTH) throw new ExpressionError(`expression nests deeper than ${MAX_DEPTH}`);
  const next = (n: jsep.Expression) => check(n, shape, depth + 1);
  switch (node.type) {
    case "Literal": {
      const v = (node as jsep.Literal).value;
      if (v instanceof RegExp) throw new ExpressionError("regular expressions are not supported");
      return;
    }
    case "Identifier": {
      const name = (node as jsep.Identifier).name;
      if (BLOCKED_PROPERTIES.has(name)) throw new ExpressionError(`"${name}" is not accessible`);
      if (shape && !Object.hasOwn(shape, name)) {
        throw new ExpressionError(
          `unknown name "${name}"; the scope has: ${Object.keys(shape).join(", ")}`,
        );
      }
      return;
    }
    case "MemberExpression": {
      const m = node as jsep.MemberExpression;
      const key = staticKey(m);
      if (key !== undefined && BLOCKED_PROPERTIES.has(key))
        throw new ExpressionError(`"${key}" is not accessible`);
      next(m.object);
      if (m.computed) next(m.property);
      if (shape && key !== undefined) checkPath(m, shape);
      return;
    }
    case "BinaryExpression": {
      const b = node as jsep.BinaryExpression;
      if (!BINARY.has(b.operator))
        throw new ExpressionError(`operator "${b.operator}" is not supported`);
      next(b.left);
      next(b.right);
      return;
    }
    case "UnaryExpression": {
      const u = node as jsep.UnaryExpression;
      if (!UNARY.has(u.operator))
        throw new ExpressionError(`operator "${u.operator}" is not supported`);
      next(u.argument);
      return;
    }
    case "ConditionalExpression": {
      const c = node as jsep.ConditionalExpression;
      next(c.test);
      next(c.consequent);
      next(c.alternate);
      return;
    }
    case "ArrayExpression":
      for (const el of (node as jsep.ArrayExpression).elements) {
        if (el === null) throw new ExpressionError("array holes are not supported");
        next(el);
      }
      return;
    case "CallExpression": {
      const c = node as jsep.CallExpression;
      if (c.callee.type !== "Identifier")
        throw new ExpressionError(
          `only these functions can be called: ${Object.keys(FUNCTIONS).join(", ")}`,
        );
      const name = (c.callee as jsep.Identifier).name;
      const fn = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
      if (!fn)
        throw new ExpressionError(
          `unknown function "${name}"; functions: ${Object.keys(FUNCTIONS).join(", ")}`,
        );
      const [lo, hi] = fn.arity;
      if (c.arguments.length < lo || c.arguments.length > hi)
        throw new ExpressionError(
          `${name}() takes ${lo === hi ? lo : `${lo} to ${hi}`} argument(s), got ${c.arguments.length}`,
        );
      c.arguments.forEach(next);
      return;
    }
    case "Compound": {
      const dangling = (node as jsep.Compound).body.find(
        (n) => n.type === "Identifier" && WORD_OPERATORS.has((n as jsep.Identifier).name),
      );
      throw new ExpressionError(
        dangling
          ? `"${(dangling as jsep.Identifier).name}" needs an expression on both sides`
          : "expected one expression; combine conditions with `and` / `or` (found several side by side)",
      );
    }
    case "ThisExpression":
      throw new ExpressionError('"this" is not supported');
    default:
      throw new ExpressionError(`${node.type} is not supported`);
  }
}

function staticKey(m: jsep.MemberExpression): string | undefined {
  if (!m.computed && m.property.type === "Identifier") return (m.property as jsep.Identifier).name;
  if (m.computed && m.property.type === "Literal")
    return String((m.property as jsep.Literal).value);
  return undefined;
}

/** Checks `a.b.c` against the scope shape when every step of the chain is a static name. */
function checkPath(m: jsep.MemberExpression, shape: Record<string, ScopeShape>): void {
  const path: string[] = [];
  let cur: jsep.Expression = m;
  while (cur.type === "MemberExpression") {
    const key = staticKey(cur as jsep.MemberExpression);
    if (key === undefined) return;
    path.unshift(key);
    cur = (cur as jsep.MemberExpression).object;
  }
  if (cur.type !== "Identifier") return;
  let at: ScopeShape | undefined = shape[(cur as jsep.Identifier).name];
  let where = (cur as jsep.Identifier).name;
  for (const key of path) {
    if (at === undefined || at === "open") return;
    if (at === "leaf") throw new ExpressionError(`"${where}" has no fields (found .${key})`);
    if (!Object.hasOwn(at, key))
      throw new ExpressionError(
        `"${where}" has no field "${key}"; fields: ${Object.keys(at).join(", ")}`,
      );
    at = at[key];
    where = `${where}.${key}`;
  }
}

/** Reads an own data property of plain data; anything else (prototype, accessors) is null. */
function member(obj: Value | undefined, key: Value): Value {
  if (obj === null || obj === undefined || typeof obj !== "object") return null;
  if (Array.isArray(obj)) {
    return typeof key === "number" && Number.isInteger(key) && key >= 0 && key < obj.length
      ? (obj[key] ?? null)
      : null;
  }
  const k = typeof key === "string" ? key : typeof key === "number" ? String(key) : undefined;
  if (k === undefined || BLOCKED_PROPERTIES.has(k) || !Object.hasOwn(obj, k)) return null;
  const desc = Object.getOwnPropertyDescriptor(obj, k);
  return desc && "value" in desc ? ((desc.value as Value | undefined) ?? null) : null;
}

export function truthy(v: Value): boolean {
  return !(v === null || v === false || v === 0 || v === "" || Number.isNaN(v));
}

function equals(a: Value, b: Value): boolean {
  return a === b;
}

function compare(op: string, a: Value, b: Value): boolean {
  const bothNumbers = typeof a === "number" && typeof b === "number";
  const bothStrings = typeof a === "string" && typeof b === "string";
  if (!bothNumbers && !bothStrings) return false;
  const x = a as number | string;
  const y = b as number | string;
  return op === "<" ? x < y : op === "<=" ? x <= y : op === ">" ? x > y : x >= y;
}

function arithmetic(op: string, a: Value, b: Value): Value {
  if (op === "+" && (typeof a === "string" || typeof b === "string")) return str(a) + str(b);
  if (typeof a !== "number" || typeof b !== "number") return null;
  switch (op) {
    case "+":
      return finite(a + b);
    case "-":
      return finite(a - b);
    case "*":
      return finite(a * b);
    case "/":
      return finite(a / b);
    default:
      return finite(a % b);
  }
}

function isIn(needle: Value, hay: Value): boolean {
  if (Array.isArray(hay)) return hay.some((x) => equals(x, needle));
  if (typeof hay === "string") return hay.includes(str(needle));
  if (hay && typeof hay === "object") return member(hay, needle) !== null;
  return false;
}

function evaluate(node: jsep.Expression, scope: Record<string, Value>): Value {
  switch (node.type) {
    case "Literal":
      return (node as jsep.Literal).value as Value;
    case "Identifier": {
      const name = (node as jsep.Identifier).name;
      return member(scope, name);
    }
    case "MemberExpression": {
      const m = node as jsep.MemberExpression;
      const obj = evaluate(m.object, scope);
      const key = m.computed ? evaluate(m.property, scope) : (m.property as jsep.Identifier).name;
      return member(obj, key);
    }
    case "UnaryExpression": {
      const u = node as jsep.UnaryExpression;
      const v = evaluate(u.argument, scope);
      if (u.operator === "not" || u.operator === "!") return !truthy(v);
      const n = num(v);
      return n === null ? null : u.operator === "-" ? -n : n;
    }
    case "BinaryExpression": {
      const b = node as jsep.BinaryExpression;
      const op = b.operator;
      if (op === "and" || op === "&&") {
        const l = evaluate(b.left, scope);
        return truthy(l) ? evaluate(b.right, scope) : l;
      }
      if (op === "or" || op === "||") {
        const l = evaluate(b.left, scope);
        return truthy(l) ? l : evaluate(b.right, scope);
      }
      if (op === "??") return evaluate(b.left, scope) ?? evaluate(b.right, scope);
      const l = evaluate(b.left, scope);
      const r = evaluate(b.right, scope);
      switch (op) {
        case "==":
        case "===":
          return equals(l, r);
        case "!=":
        case "!==":
          return !equals(l, r);
        case "<":
        case "<=":
        case ">":
        case ">=":
          return compare(op, l, r);
        case "in":
          return isIn(l, r);
        default:
          return arithmetic(op, l, r);
      }
    }
    case "ConditionalExpression": {
      const c = node as jsep.ConditionalExpression;
      return truthy(evaluate(c.test, scope))
        ? evaluate(c.consequent, scope)
        : evaluate(c.alternate, scope);
    }
    case "ArrayExpression":
      return (node as jsep.ArrayExpression).elements.map((e) =>
        e === null ? null : evaluate(e, scope),
      );
    case "CallExpression": {
      const c = node as jsep.CallExpression;
      const fn = FUNCTIONS[(c.callee as jsep.Identifier).name];
      if (!fn) return null;
      return fn.call(...c.arguments.map((a) => evaluate(a, scope)));
    }
    default:
      // compileExpression refused every other node type.
      return null;
  }
}
