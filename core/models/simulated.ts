// Offline simulated chat model: lets Refinery run with no network and no API key, and drives
// demos, tests and benchmarks. Its outputs are simulated (seeded, rate-driven), not from an LLM.
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type {
  BaseChatModelParams,
  LangSmithParams,
} from "@langchain/core/language_models/chat_models";
import type { CallbackManagerForLLMRun } from "@langchain/core/callbacks/manager";
import { AIMessage, AIMessageChunk } from "@langchain/core/messages";
import type { BaseMessage, UsageMetadata } from "@langchain/core/messages";
import { ChatGenerationChunk } from "@langchain/core/outputs";
import type { ChatResult } from "@langchain/core/outputs";
import { z } from "zod";
import {
  evaluateArithmetic,
  evaluateAst,
  parseArithmetic as parseAst,
  type ArithmeticAst as Ast,
  type ArithmeticStep as Step,
} from "../arith.ts";
import { fromZodError } from "../errors.ts";
import { tokenize } from "../memory/text.ts";
import { mulberry32 } from "../random.ts";
import type { ModelRole, RefineryCallOptions } from "./types.ts";

export const SIMULATED_MODEL_NAME = "refinery-simulated";

/** One line to show wherever simulated output reaches a person. */
export const SIMULATED_MODEL_NOTICE =
  "offline simulated model — outputs are simulated, not from a real LLM";

/** Knowledge the simulation cannot compute itself: the correct final answer for a task. */
export type SimulatedOracle = (task: string) => string | undefined;

/** Constructor options; every field is optional. See docs/simulated-model.md. */
export interface SimulatedModelOptions {
  /** Seed for every random decision; same seed and inputs give the same outputs. Default 42. */
  seed?: number;
  /** Probability that a first draft (`generate`) is wrong. Default 0.35. */
  firstDraftErrorRate?: number;
  /** Probability that the critic spots a real error and names it specifically. Default 0.85. */
  detectRate?: number;
  /** Like `detectRate`, for a wrong value shown without any working the critic could recheck (it must re-solve the task). Default 0.5. */
  uncheckableDetectRate?: number;
  /** Share of wrong drafts whose error no deterministic check can see: a step-by-step draft with a misread operand (every step's arithmetic holds), a JSON draft with a well-typed wrong value. The critic finds these with `uncheckableDetectRate`. Default 0.58 (see docs/simulated-model.md). */
  invisibleErrorRate?: number;
  /** Probability that the critic flags a correct draft with a vague issue. Default 0.15. */
  falseAlarmRate?: number;
  /** Share of false alarms that make a specific wrong claim naming a value, a field or a line ("The final answer 80 is wrong: it should be 82.") instead of a vague doubt. Default 0.5 (an assumption, see docs/simulated-model.md). */
  specificFalseAlarmRate?: number;
  /** When the critic misses a real error: probability it still asks for a vague revision instead of passing. Default 0.5. */
  vagueCritiqueRate?: number;
  /** Probability that a critique's outcome is the critic's fixed judgement of this final answer (the same for every critique of a draft with that answer, whatever the prompt) rather than a fresh look. 0 (default): every critique is independent; 1: the critic always repeats itself. */
  criticCorrelation?: number;
  /** Probability that a revision fixes the error when the feedback is specific. Default 0.9. */
  fixRateSpecific?: number;
  /** Probability that a revision fixes the error when the feedback is vague. Default 0.3. */
  fixRateVague?: number;
  /** Probability that revising a correct draft makes it wrong. Default 0.3. */
  breakRate?: number;
  /** When a revision changes nothing of substance (a failed vague fix, or a kept correct draft): probability it returns the previous draft verbatim. Default 0.5. */
  unchangedRate?: number;
  /** When asked for PASR output (a system prompt with `<refine>` and `<answer>`): probability that a wrong first line of reasoning is caught and fixed by a `<refine>` segment inside the same generation. Default 0.21 (an inference from the PASR paper's headline, see docs/simulated-model.md). */
  pasrFixRate?: number;
  /** Probability that PASR output is malformed (the `</answer>` tag is missing), so the strategy falls back. Default 0. */
  pasrFormatErrorRate?: number;
  /** Half-width of the uniform noise added to judge scores. Default 0.1. */
  judgeNoise?: number;
  /** Simulated latency per call in milliseconds; aborts are honoured while waiting. Default 0. */
  latencyMs?: number;
  /** Characters per token for usage accounting (prompt and completion). Default 4. */
  charsPerToken?: number;
  /** Hidden "reasoning" tokens added to every call's completion tokens. Default 32. */
  reasoningTokens?: number;
  /** How much a relevant lesson in the generate prompt (one learned on tasks sharing at least two terms with this task, see core/memory) lowers the first-draft error rate: the rate is multiplied by 1 - lessonBenefit. Default 0.5. */
  lessonBenefit?: number;
  /** When true, the n-th repeat of an identical prompt on one instance draws fresh randomness (like sampling at temperature > 0). Default false: identical prompts give identical outputs. */
  varyRepeats?: boolean;
  /** Rates for one task family that replace the options above for that family only (docs/simulated-model.md). */
  families?: Partial<Record<SimulatedFamily, SimulatedRates>>;
  /** Correct final answers by task text (exact, or case/whitespace-insensitive). Checked before `oracle`. */
  answerKey?: Record<string, string>;
  /** Correct final answer for a task, or undefined when unknown. */
  oracle?: SimulatedOracle;
}

/**
 * What the simulation knows about a task: `computed` (explicit arithmetic, worked step by step),
 * `known` (a value from the answer key or oracle: word problems, questions, multiple choice),
 * `json` (extraction and other JSON tasks), `text` (anything else).
 */
export const SIMULATED_FAMILIES = ["computed", "known", "json", "text"] as const;
export type SimulatedFamily = (typeof SIMULATED_FAMILIES)[number];

/** The rates a task family may set for itself. */
export const FAMILY_RATES = [
  "firstDraftErrorRate",
  "detectRate",
  "uncheckableDetectRate",
  "invisibleErrorRate",
  "falseAlarmRate",
  "specificFalseAlarmRate",
  "vagueCritiqueRate",
  "criticCorrelation",
  "fixRateSpecific",
  "fixRateVague",
  "breakRate",
  "unchangedRate",
] as const;
export type SimulatedRates = Partial<Record<(typeof FAMILY_RATES)[number], number>>;

type ResolvedOptions = Required<Omit<SimulatedModelOptions, "answerKey" | "oracle" | "families">> &
  Pick<SimulatedModelOptions, "answerKey" | "oracle" | "families">;

const rate = z.number().min(0).max(1);
const RatesSchema = z.strictObject(
  Object.fromEntries(FAMILY_RATES.map((name) => [name, rate.optional()])) as Record<
    (typeof FAMILY_RATES)[number],
    z.ZodOptional<typeof rate>
  >,
);

const OptionsSchema: z.ZodType<ResolvedOptions, SimulatedModelOptions> = z.strictObject({
  seed: z.number().int().default(42),
  firstDraftErrorRate: rate.default(0.35),
  detectRate: rate.default(0.85),
  uncheckableDetectRate: rate.default(0.5),
  invisibleErrorRate: rate.default(0.58),
  falseAlarmRate: rate.default(0.15),
  specificFalseAlarmRate: rate.default(0.5),
  vagueCritiqueRate: rate.default(0.5),
  criticCorrelation: rate.default(0),
  fixRateSpecific: rate.default(0.9),
  fixRateVague: rate.default(0.3),
  breakRate: rate.default(0.3),
  unchangedRate: rate.default(0.5),
  pasrFixRate: rate.default(0.21),
  pasrFormatErrorRate: rate.default(0),
  judgeNoise: z.number().min(0).max(0.5).default(0.1),
  latencyMs: z.number().int().min(0).max(600_000).default(0),
  charsPerToken: z.number().positive().default(4),
  reasoningTokens: z.number().int().min(0).default(32),
  varyRepeats: z.boolean().default(false),
  lessonBenefit: rate.default(0.5),
  families: z
    .strictObject(
      Object.fromEntries(SIMULATED_FAMILIES.map((f) => [f, RatesSchema.optional()])) as Record<
        SimulatedFamily,
        z.ZodOptional<typeof RatesSchema>
      >,
    )
    .optional(),
  answerKey: z.record(z.string(), z.string()).optional(),
  oracle: z
    .custom<SimulatedOracle>((v) => typeof v === "function", {
      message: "oracle must be a function (task: string) => string | undefined",
    })
    .optional(),
});

/** The defaults, for docs and benchmark reports. */
export const DEFAULT_SIMULATED_OPTIONS: Readonly<ResolvedOptions> = Object.freeze(
  OptionsSchema.parse({}),
);

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: a 53-bit string hash (cyrb53) seeds mulberry32. Each decision draws
// from its own labelled stream, so adding a decision never shifts the others.

function hashString(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** A uniform draw in [0, 1) for `label`, fixed by the call's key. */
type Draw = (label: string) => number;

function createDraw(key: string): Draw {
  return (label) => mulberry32(hashString(`${key}\u0000${label}`))();
}

function pick<T>(items: readonly T[], u: number): T {
  const item = items[Math.min(items.length - 1, Math.floor(u * items.length))];
  if (item === undefined) throw new Error("pick from an empty list");
  return item;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic: the safe parser lives in core/arith.ts; re-exported here for existing callers.

export { evaluateArithmetic } from "../arith.ts";

const WORD_OPERATORS: ReadonlyArray<[RegExp, string]> = [
  [/\bmultiplied by\b/gi, " * "],
  [/\bdivided by\b/gi, " / "],
  [/\btimes\b/gi, " * "],
  [/\bplus\b/gi, " + "],
  [/\bminus\b/gi, " - "],
  [/×/g, " * "],
  [/÷/g, " / "],
  [/−/g, "-"],
];

export interface ArithmeticProblem {
  /** The expression as found (operators normalized to + - * /). */
  expression: string;
  value: number;
}

/**
 * Finds the largest arithmetic expression in a task ("What is 12 * (3 + 4)?", "7 plus 5").
 * Hyphenated ranges without spaces ("2-3 sentences") are not treated as subtraction.
 */
export function extractArithmetic(task: string): ArithmeticProblem | undefined {
  let text = task;
  for (const [re, op] of WORD_OPERATORS) text = text.replace(re, op);
  let best: { expression: string; ast: Ast; ops: number } | undefined;
  for (const match of text.matchAll(/[\d.()+\-*/\s]+/g)) {
    let candidate = match[0].trim().replace(/[.\s]+$/, "");
    for (let attempt = 0; attempt < 4 && candidate.length > 0; attempt++) {
      const ast = parseAst(candidate);
      if (ast) {
        const ops = countOps(ast);
        const onlyUnspacedHyphens = !/\s[-+*/]\s|[+*/]/.test(candidate);
        if (ops > 0 && !onlyUnspacedHyphens && (!best || ops > best.ops)) {
          best = { expression: candidate.replace(/\s+/g, " "), ast, ops };
        }
        break;
      }
      // Drop an unbalanced parenthesis picked up from the surrounding prose, then retry.
      candidate = candidate.replace(/^\(\s*/, "").replace(/\s*\)$/, "");
    }
  }
  if (!best) return undefined;
  const value = evaluateAst(best.ast, []);
  return value === undefined ? undefined : { expression: best.expression, value };
}

function countOps(ast: Ast): number {
  if (ast.type === "num") return 0;
  if (ast.type === "neg") return countOps(ast.arg);
  return 1 + countOps(ast.left) + countOps(ast.right);
}

/** "A train travels 120 km in 1.5 hours ... speed?" → 120 / 1.5. Only distance per hour. */
function extractRateProblem(task: string): { expression: string; lines: string[] } | undefined {
  if (!/\b(speed|per hour|km\/h|mph|kph)\b/i.test(task)) return undefined;
  const m =
    /(\d+(?:\.\d+)?)\s*(km|kilomet(?:er|re)s?|miles?|mi|meters?|metres?|m)\b[^.?!]*?\bin\s+(\d+(?:\.\d+)?)\s*(hours?|hrs?|h)\b/i.exec(
      task,
    );
  if (!m || m[1] === undefined || m[3] === undefined || Number(m[3]) === 0) return undefined;
  return {
    expression: `${m[1]} / ${m[3]}`,
    lines: [`The distance is ${m[1]} ${m[2]} and the time is ${m[3]} ${m[4]}.`],
  };
}

export function formatNumber(n: number): string {
  if (Object.is(n, -0) || n === 0) return "0";
  if (Math.abs(n) >= 1e15) return String(n);
  return String(Number(n.toFixed(6)));
}

function numbersEqual(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
}

// ---------------------------------------------------------------------------------------------
// Task knowledge: what the simulation knows about a task, and how to write and judge drafts.

interface JsonField {
  name: string;
  /** JSON Schema type names; empty = any. */
  types: string[];
  required: boolean;
  /** The value a correct draft carries. */
  value: unknown;
  /** When set, a correct draft must carry exactly `value` (answers from the oracle). */
  exact: boolean;
  enumValues?: unknown[];
}

type Knowledge =
  | {
      kind: "value";
      /** Correct final answer as written after `Answer:`. */
      answer: string;
      numeric?: number;
      ast?: Ast;
      expression?: string;
      intro: string[];
    }
  | { kind: "json"; fields: JsonField[] }
  | { kind: "text"; topic: string };

function normalizeKey(text: string): string {
  return text.trim().replace(/\s+/g, " ").toLowerCase();
}

function lookupAnswer(task: string, options: ResolvedOptions): string | undefined {
  const key = options.answerKey;
  if (key) {
    if (Object.prototype.hasOwnProperty.call(key, task)) return key[task];
    const wanted = normalizeKey(task);
    for (const [k, v] of Object.entries(key)) if (normalizeKey(k) === wanted) return v;
  }
  return options.oracle?.(task);
}

function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : undefined;
}

function understand(task: string, options: ResolvedOptions): Knowledge {
  const known = lookupAnswer(task, options);
  if (known !== undefined) {
    const obj = parseJsonObject(known);
    if (obj && known.trim().startsWith("{")) {
      return {
        kind: "json",
        fields: Object.entries(obj).map(([name, value]) => ({
          name,
          types: [jsonTypeOf(value)],
          required: true,
          value,
          exact: true,
        })),
      };
    }
    return { kind: "value", answer: known.trim(), numeric: parseNumber(known), intro: [] };
  }
  if (isJsonTask(task)) return { kind: "json", fields: jsonFieldsFor(task) };
  const rateProblem = extractRateProblem(task);
  const arithmetic = extractArithmetic(task);
  const expression = arithmetic?.expression ?? rateProblem?.expression;
  const ast = expression === undefined ? undefined : parseAst(expression);
  const value = ast ? evaluateAst(ast, []) : undefined;
  if (ast && expression !== undefined && value !== undefined) {
    return {
      kind: "value",
      answer: formatNumber(value),
      numeric: value,
      ast,
      expression,
      intro: arithmetic ? [] : (rateProblem?.lines ?? []),
    };
  }
  return { kind: "text", topic: topicOf(task) };
}

function familyOf(k: Knowledge): SimulatedFamily {
  if (k.kind === "value") return k.ast ? "computed" : "known";
  return k.kind;
}

/** The options with the family's own rates in place of the general ones. */
function ratesFor(o: ResolvedOptions, family: SimulatedFamily): ResolvedOptions {
  const own = o.families?.[family];
  return own ? { ...o, ...own } : o;
}

function topicOf(task: string): string {
  const first = (task.trim().split(/(?<=[.?!])\s+|\n/)[0] ?? "").trim();
  const clipped = first.length > 80 ? `${first.slice(0, 79).trimEnd()}…` : first;
  return clipped.replace(/[.?!:;,]+$/, "") || "the request";
}

// --- JSON tasks --------------------------------------------------------------------------------

function isJsonTask(task: string): boolean {
  return /\bjson\b/i.test(task) || findSchema(task) !== undefined;
}

/** The first balanced `{...}` in `text` that parses as a JSON object. */
function parseJsonObject(text: string): Record<string, unknown> | undefined {
  for (let start = text.indexOf("{"); start !== -1; start = text.indexOf("{", start + 1)) {
    const end = matchingBrace(text, start);
    if (end === -1) continue;
    try {
      const value: unknown = JSON.parse(text.slice(start, end + 1));
      if (isPlainObject(value)) return value;
    } catch {
      // not JSON here; try the next brace
    }
  }
  return undefined;
}

function matchingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0) return i;
  }
  return -1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function findSchema(task: string): Record<string, unknown> | undefined {
  for (let start = task.indexOf("{"); start !== -1; start = task.indexOf("{", start + 1)) {
    const end = matchingBrace(task, start);
    if (end === -1) continue;
    try {
      const value: unknown = JSON.parse(task.slice(start, end + 1));
      if (isPlainObject(value) && isPlainObject(value.properties)) return value;
    } catch {
      // keep scanning
    }
  }
  return undefined;
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(value: unknown, types: string[]): boolean {
  if (types.length === 0) return value !== undefined;
  const actual = jsonTypeOf(value);
  return types.some((t) => t === actual || (t === "number" && actual === "integer"));
}

function jsonFieldsFor(task: string): JsonField[] {
  const schema = findSchema(task);
  if (schema) return fieldsFromSchema(schema);
  const named = fieldsFromProse(task);
  if (named.length > 0) return named;
  return [
    {
      name: "result",
      types: ["string"],
      required: true,
      value: `answer to: ${topicOf(task)}`,
      exact: false,
    },
    { name: "confidence", types: ["number"], required: true, value: 0.8, exact: false },
  ];
}

function fieldsFromSchema(schema: Record<string, unknown>): JsonField[] {
  const properties = isPlainObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required)
    ? schema.required.filter((r): r is string => typeof r === "string")
    : Object.keys(properties);
  return Object.entries(properties).map(([name, raw]) => {
    const prop = isPlainObject(raw) ? raw : {};
    const types = schemaTypes(prop);
    return {
      name,
      types,
      required: required.includes(name),
      value: sampleValue(name, prop),
      exact: false,
      enumValues: Array.isArray(prop.enum) ? prop.enum : undefined,
    };
  });
}

function schemaTypes(prop: Record<string, unknown>): string[] {
  if (typeof prop.type === "string") return [prop.type];
  if (Array.isArray(prop.type)) return prop.type.filter((t): t is string => typeof t === "string");
  if (Array.isArray(prop.enum) && prop.enum.length > 0) return [jsonTypeOf(prop.enum[0])];
  return [];
}

const NUMBER_NAMES: Record<string, number> = {
  age: 36,
  year: 1843,
  price: 19.5,
  amount: 120,
  total: 120,
  count: 3,
  quantity: 3,
  score: 4,
  rating: 4,
};

const STRING_NAMES: Record<string, string> = {
  name: "Ada Lovelace",
  email: "ada@example.com",
  city: "London",
  country: "United Kingdom",
  title: "Notes on the Analytical Engine",
  id: "item-001",
  status: "active",
  date: "1843-07-10",
};

function sampleValue(name: string, prop: Record<string, unknown>, depth = 0): unknown {
  if (Array.isArray(prop.enum) && prop.enum.length > 0) return prop.enum[0];
  const type = schemaTypes(prop)[0] ?? "string";
  const key = name.toLowerCase();
  switch (type) {
    case "integer":
    case "number": {
      const min = typeof prop.minimum === "number" ? prop.minimum : undefined;
      const max = typeof prop.maximum === "number" ? prop.maximum : undefined;
      let n = NUMBER_NAMES[key] ?? min ?? 42;
      if (max !== undefined && n > max) n = max;
      if (min !== undefined && n < min) n = min;
      return type === "integer" ? Math.ceil(n) : n;
    }
    case "boolean":
      return true;
    case "null":
      return null;
    case "array": {
      const items = isPlainObject(prop.items) ? prop.items : { type: "string" };
      return depth > 3 ? [] : [sampleValue(singular(name), items, depth + 1)];
    }
    case "object": {
      const nested = isPlainObject(prop.properties) ? prop.properties : {};
      const out: Record<string, unknown> = {};
      if (depth > 3) return out;
      for (const [k, v] of Object.entries(nested))
        out[k] = sampleValue(k, isPlainObject(v) ? v : {}, depth + 1);
      return out;
    }
    default:
      if (prop.format === "email") return STRING_NAMES.email;
      if (prop.format === "date") return STRING_NAMES.date;
      return STRING_NAMES[key] ?? `sample ${name.replace(/[_-]+/g, " ")}`;
  }
}

function singular(name: string): string {
  return name.endsWith("s") ? name.slice(0, -1) : name;
}

/** "Return a JSON object with fields name, age (number) and email" → three fields. */
function fieldsFromProse(task: string): JsonField[] {
  const m = /\b(?:fields?|keys?|properties)\b(?:\s+(?:named|called))?\s*:?\s*([^.?!\n]+)/i.exec(
    task,
  );
  if (!m || m[1] === undefined) return [];
  const fields: JsonField[] = [];
  for (const piece of m[1].split(/\s*(?:,|;|\band\b|\bor\b)\s*/i)) {
    const pm = /^(?:(?:a|an|the)\s+)?["'`]?([A-Za-z_][\w-]*)["'`]?\s*(?:\((\w+)\))?/.exec(
      piece.trim(),
    );
    if (!pm || pm[1] === undefined || fields.some((f) => f.name === pm[1])) continue;
    const name = pm[1];
    const type = pm[2]?.toLowerCase() ?? guessType(name);
    const prop = { type };
    fields.push({
      name,
      types: [type],
      required: true,
      value: sampleValue(name, prop),
      exact: false,
    });
    if (fields.length >= 8) break;
  }
  return fields;
}

function guessType(name: string): string {
  const key = name.toLowerCase();
  if (/^(is|has|can|should)[_A-Z]|^(valid|enabled|active|done)$/.test(name) || /^is_/.test(key))
    return "boolean";
  if (
    /(^|_)(age|count|total|price|amount|quantity|year|score|rating|number|size|length|width|height|weight)$/.test(
      key,
    )
  )
    return key === "number" ? "string" : "number";
  if (/^(tags|items|list|values|names|steps|keywords)$/.test(key)) return "array";
  return "string";
}

// --- Drafts ------------------------------------------------------------------------------------

const DELTAS = [-2, -1, 1, 2, 3] as const;

/** The expression with one number literal misread (off by `delta`, kept positive). */
function misreadOperand(ast: Ast, draw: Draw, delta: number): Ast {
  const count = (node: Ast): number =>
    node.type === "num"
      ? 1
      : node.type === "neg"
        ? count(node.arg)
        : count(node.left) + count(node.right);
  const target = Math.floor(draw("misread") * count(ast));
  let index = 0;
  const walk = (node: Ast): Ast => {
    if (node.type === "neg") return { type: "neg", arg: walk(node.arg) };
    if (node.type === "bin") return { ...node, left: walk(node.left), right: walk(node.right) };
    if (index++ !== target) return node;
    const value = node.value + delta > 0 ? node.value + delta : node.value + Math.abs(delta);
    return { type: "num", value, text: formatNumber(value) };
  };
  return walk(ast);
}

const VALUE_INTROS_FIRST = [
  (e: string) => `We need the value of ${e}.`,
  (e: string) => `Let's evaluate ${e} step by step, respecting operator precedence.`,
  (e: string) => `Compute ${e} one operation at a time.`,
];
const VALUE_INTROS_REVISED = [
  (e: string) => `Revised: I rechecked each operation in ${e}.`,
  (e: string) => `Revised solution: ${e}, recomputed from scratch.`,
];

const TEXT_POINTS = [
  "Start from what the task actually asks and restate it in one sentence.",
  "List the constraints the task states and respect each of them.",
  "Work through the main points in order, with a concrete example for each.",
  "Note the trade-offs and when a different choice would be better.",
  "Check the result against the task's requirements before finishing.",
  "Keep the wording plain and the structure easy to scan.",
];

type DraftStage = "first" | "revised";

/**
 * A draft, right or wrong. `invisibleRate` is the share of wrong drafts whose error no
 * deterministic check can see (a misread operand, a well-typed wrong value).
 */
function writeDraft(
  k: Knowledge,
  correct: boolean,
  draw: Draw,
  stage: DraftStage,
  task: string,
  invisibleRate: number,
): string {
  const invisible = !correct && draw("invisible") < invisibleRate;
  switch (k.kind) {
    case "value":
      return writeValueDraft(k, correct, draw, stage, task, invisible);
    case "json":
      return writeJsonDraft(k.fields, correct, draw, task, invisible);
    case "text":
      return writeTextDraft(k.topic, correct, draw, stage);
  }
}

function writeValueDraft(
  k: Extract<Knowledge, { kind: "value" }>,
  correct: boolean,
  draw: Draw,
  stage: DraftStage,
  task: string,
  invisible: boolean,
): string {
  const intros = stage === "first" ? VALUE_INTROS_FIRST : VALUE_INTROS_REVISED;
  const delta = pick(DELTAS, draw("delta"));
  if (k.ast && k.expression !== undefined && k.numeric !== undefined) {
    let steps: Step[] = [];
    let final = evaluateAst(k.ast, steps);
    const misread = invisible ? misreadOperand(k.ast, draw, delta) : undefined;
    const misreadSteps: Step[] = [];
    const misreadValue = misread ? evaluateAst(misread, misreadSteps) : undefined;
    if (misreadValue !== undefined && final !== undefined && !numbersEqual(misreadValue, final)) {
      // Every step's arithmetic holds; one operand was copied wrong from the task.
      steps = misreadSteps;
      final = misreadValue;
    } else if (!correct) {
      const wrongSteps: Step[] = [];
      const stepCount = steps.length;
      const target = Math.floor(draw("wrong-step") * stepCount);
      const wrong = evaluateAst(k.ast, wrongSteps, { step: target, delta });
      if (wrong !== undefined && final !== undefined && !numbersEqual(wrong, final)) {
        steps = wrongSteps;
        final = wrong;
      } else {
        // The slip vanished (e.g. multiplied by zero): put it in the last step instead.
        const last = steps[steps.length - 1];
        final = (final ?? 0) + delta;
        if (last) steps[steps.length - 1] = { ...last, result: final };
      }
    }
    const lines = [
      ...k.intro,
      pick(intros, draw("intro"))(k.expression),
      ...steps.map(
        (s, i) =>
          `Step ${i + 1}: ${formatNumber(s.left)} ${s.op} ${formatNumber(s.right)} = ${formatNumber(s.result)}`,
      ),
      `Answer: ${formatNumber(final ?? 0)}`,
    ];
    return lines.join("\n");
  }
  const answer = correct ? k.answer : wrongAnswer(k.answer, delta, task, draw);
  const opener =
    stage === "first"
      ? "Step 1: Identify what the task is asking for."
      : "Step 1: Revised: re-read the task and what it asks for.";
  return [
    opener,
    `Step 2: Work it out from the information given: the result is ${answer}.`,
    `Answer: ${answer}`,
  ].join("\n");
}

const NOT_DISTRACTORS = new Set(
  "What Which Who Whom Whose When Where Why How Give Name List State Answer Find Is Are Was Were Do Does Did The A An In On Of For And Or To Please Return Write Explain Compute".split(
    " ",
  ),
);

/** A plausible wrong answer when only the right one is known. */
function wrongAnswer(answer: string, delta: number, task: string, draw: Draw): string {
  const n = parseNumber(answer);
  if (n !== undefined) return formatNumber(n + delta);
  const flips: Record<string, string> = { yes: "no", no: "yes", true: "false", false: "true" };
  const flipped = flips[answer.toLowerCase()];
  if (flipped !== undefined)
    return answer[0] === answer[0]?.toUpperCase()
      ? flipped[0]?.toUpperCase() + flipped.slice(1)
      : flipped;
  if (/^[A-Ea-e]$/.test(answer)) {
    const base = answer === answer.toUpperCase() ? 65 : 97;
    return String.fromCharCode(base + ((answer.charCodeAt(0) - base + 1) % 5));
  }
  const lowerAnswer = answer.toLowerCase();
  const distractors = [...task.matchAll(/\b[A-Z][a-z]+\b/g)]
    .map((m) => m[0])
    .filter((w) => !NOT_DISTRACTORS.has(w) && !lowerAnswer.includes(w.toLowerCase()));
  return distractors.length > 0 ? pick(distractors, draw("distractor")) : "unknown";
}

function writeJsonDraft(
  fields: JsonField[],
  correct: boolean,
  draw: Draw,
  task: string,
  invisible: boolean,
): string {
  const obj: Record<string, unknown> = {};
  for (const f of fields) obj[f.name] = f.value;
  // A well-typed wrong value: only a field whose value is known (an answer key) can be wrong so.
  const known = fields.filter((f) => f.exact && f.required && !f.enumValues);
  const target = invisible && known.length > 0 ? pick(known, draw("json-field")) : undefined;
  const wrong = target ? wellTypedWrong(target, draw, task) : undefined;
  if (target && wrong !== undefined) {
    obj[target.name] = wrong;
  } else if (!correct) {
    const candidates = fields.filter((f) => f.required);
    const target = candidates.length > 0 ? pick(candidates, draw("json-field")) : undefined;
    if (target) {
      if (draw("json-mode") < 0.5) delete obj[target.name];
      else obj[target.name] = mistype(target.value);
    } else {
      obj["unexpected"] = "not asked for";
    }
  }
  return JSON.stringify(obj, null, 2);
}

/** A wrong value of the right type for `field`, or undefined when none comes to hand. */
function wellTypedWrong(field: JsonField, draw: Draw, task: string): unknown {
  const v = field.value;
  let wrong: unknown;
  if (typeof v === "number") wrong = v + Math.abs(pick(DELTAS, draw("delta")));
  else if (typeof v === "boolean") wrong = !v;
  else if (typeof v === "string") {
    const w = wrongAnswer(v, pick(DELTAS, draw("delta")), task, draw);
    wrong = w === "unknown" ? undefined : w;
  }
  return wrong !== undefined && typeMatches(wrong, field.types) && !deepEqual(wrong, v)
    ? wrong
    : undefined;
}

function mistype(value: unknown): unknown {
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") return null;
  if (Array.isArray(value)) return value.map((v) => String(v)).join(", ");
  if (value === null) return "null";
  return JSON.stringify(value);
}

function writeTextDraft(topic: string, complete: boolean, draw: Draw, stage: DraftStage): string {
  const start = Math.floor(draw("points") * TEXT_POINTS.length);
  const points = [0, 1, 2].map((i) => TEXT_POINTS[(start + i * 2) % TEXT_POINTS.length]);
  const lines = [
    stage === "first" ? `Here is an answer to: ${topic}.` : `Revised answer to: ${topic}.`,
    "",
    ...points.map((p, i) => `${i + 1}. ${p}`),
  ];
  if (complete) {
    lines.push("", `Summary: the points above answer "${topic}" directly, in order.`);
  }
  return lines.join("\n");
}

// --- Assessment --------------------------------------------------------------------------------

type Assessment =
  | { correct: true; answer?: string }
  | {
      correct: false;
      /** Specific, actionable description of the error, as a good critic would write it. */
      problem: string;
      /** Whether some feedback text points at this error. */
      mentions: (feedback: string) => boolean;
    };

const ANSWER_LINE = /^[ \t]*[*_]*(?:final[ \t]+)?answer[*_]*[ \t]*[:=][ \t]*(.+?)[ \t]*$/gim;

function finalAnswer(draft: string, numeric: boolean): string | undefined {
  let last: string | undefined;
  for (const m of draft.matchAll(ANSWER_LINE)) last = m[1];
  if (last !== undefined) {
    const cleaned = last.replace(/^[*_`"']+|[*_`"'.]+$/g, "").trim();
    if (!numeric) return cleaned;
    const num = /[-+]?\d+(?:\.\d+)?/.exec(cleaned.replace(/(\d),(?=\d{3}\b)/g, "$1"));
    return num ? num[0] : cleaned;
  }
  if (!numeric) return undefined;
  const nums = [...draft.matchAll(/[-+]?\d+(?:\.\d+)?/g)];
  return nums[nums.length - 1]?.[0];
}

function sameAnswer(given: string, expected: string): boolean {
  const a = parseNumber(given);
  const b = parseNumber(expected);
  if (a !== undefined && b !== undefined) return numbersEqual(a, b);
  const norm = (s: string) =>
    s
      .toLowerCase()
      .replace(/\s+/g, " ")
      .replace(/[.!]+$/, "")
      .trim();
  return norm(given) === norm(expected);
}

function mentionsValue(feedback: string, value: string): boolean {
  const n = parseNumber(value);
  if (n !== undefined) {
    return [...feedback.matchAll(/[-+]?\d+(?:\.\d+)?/g)].some((m) => numbersEqual(Number(m[0]), n));
  }
  if (value.trim() === "") return false;
  const escaped = value.trim().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|\\W)${escaped}(\\W|$)`, "i").test(feedback);
}

/** The first "Step n: a op b = c" line whose arithmetic does not hold. */
function firstWrongStep(draft: string): { index: string; line: string } | undefined {
  for (const m of draft.matchAll(/^Step (\d+):\s*(.+?)\s*=\s*([-+]?\d+(?:\.\d+)?)\s*$/gm)) {
    const lhs = m[2] === undefined ? undefined : evaluateArithmetic(m[2]);
    if (lhs !== undefined && m[3] !== undefined && !numbersEqual(lhs, Number(m[3]))) {
      return { index: m[1] ?? "?", line: `${m[2]} = ${m[3]}` };
    }
  }
  return undefined;
}

function assess(k: Knowledge, draft: string): Assessment {
  switch (k.kind) {
    case "value": {
      const numeric = k.numeric !== undefined;
      const given = finalAnswer(draft, numeric);
      if (given === undefined || given === "") {
        return {
          correct: false,
          problem: "The draft does not state a final value: end with a line `Answer: <value>`.",
          mentions: (f) => /\banswer\s*:/i.test(f) || mentionsValue(f, k.answer),
        };
      }
      if (sameAnswer(given, k.answer)) return { correct: true, answer: given };
      const step = firstWrongStep(draft);
      const where = step
        ? `recheck step ${step.index} (${step.line})`
        : "recheck the last step and the conclusion";
      return {
        correct: false,
        problem: `The final answer ${given} is wrong: ${where}.`,
        mentions: (f) => mentionsValue(f, given) || mentionsValue(f, k.answer),
      };
    }
    case "json":
      return assessJson(k.fields, draft);
    case "text":
      return /^Summary:/m.test(draft)
        ? { correct: true }
        : {
            correct: false,
            problem:
              'The draft has no final "Summary:" line stating the conclusion; add one that answers the task directly.',
            mentions: (f) => /\b(summary|conclusion|conclude)\b/i.test(f),
          };
  }
}

function fieldMentioned(feedback: string, name: string): boolean {
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `["'\`]${n}["'\`]|[/.$]${n}\\b|\\b(field|property|key)\\s+["'\`]?${n}\\b|\\b${n}["'\`]?\\s+(field|property|key)\\b`,
    "i",
  ).test(feedback);
}

function assessJson(fields: JsonField[], draft: string): Assessment {
  const obj = parseJsonObject(draft);
  if (!obj) {
    return {
      correct: false,
      problem: "The draft is not a valid JSON object; reply with exactly one JSON object.",
      mentions: (f) => /\b(valid json|json object|parse|syntax)\b/i.test(f),
    };
  }
  for (const field of fields) {
    const present = Object.prototype.hasOwnProperty.call(obj, field.name);
    const value = obj[field.name];
    const mentions = (f: string) => fieldMentioned(f, field.name);
    if (!present) {
      if (!field.required) continue;
      return {
        correct: false,
        problem: `The field "${field.name}" is missing; the task requires it.`,
        mentions,
      };
    }
    if (!typeMatches(value, field.types)) {
      return {
        correct: false,
        problem: `The field "${field.name}" must be ${field.types.join(" or ")} but is ${jsonTypeOf(value)} (${JSON.stringify(value)}).`,
        mentions,
      };
    }
    if (field.enumValues && !field.enumValues.some((e) => deepEqual(e, value))) {
      return {
        correct: false,
        problem: `The field "${field.name}" must be one of ${JSON.stringify(field.enumValues)}.`,
        mentions,
      };
    }
    if (field.exact && !deepEqual(value, field.value)) {
      return {
        correct: false,
        problem: `The field "${field.name}" has the wrong value ${JSON.stringify(value)}.`,
        mentions,
      };
    }
  }
  return { correct: true };
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Prompt parsing: the sections written by DEFAULT_PROMPTS (core/prompts.ts).

interface ParsedPrompt {
  role: ModelRole;
  task: string;
  /** The draft under review (critique, judge) or being revised (revise). */
  draft?: string;
  /** Everything in a revise prompt that is feedback: critique, failed checks, injected notes. */
  feedback: string;
  /** True when the "Failed checks" section lists at least one real, non-soft line. */
  hasFailedChecks: boolean;
}

// A section header such as "Context:" or "Reviewer feedback (must be honoured):" ends the task.
const TASK_END =
  /\n[ \t]*(?:Context|Additional context|Feedback|Human feedback|Reviewer feedback|Reference|Draft|Previous draft|Critique|Failed checks|Rubric|Lessons from earlier, similar tasks)(?:[ \t]*\([^)\n]*\))?[ \t]*:/i;

/** Placeholder lines meaning "nothing failed", e.g. "(all checks passed)" from nodes/revise.ts. */
const EMPTY_CHECK_LINE =
  /^\s*(?:[-*•]\s*)?\(?\s*(?:none|n\/a|all checks passed|no (?:failed )?checks(?: failed)?|-|—)?\s*\)?\.?\s*$/i;

/** A failed-check line marked soft (e.g. "- [judge, soft] …") is a model's opinion, not a check. */
const SOFT_CHECK_LINE = /^\s*(?:[-*•]\s*)?\[[^\]\n]*\bsoft\b[^\]\n]*\]/i;

function inferRole(system: string, user: string): ModelRole {
  const all = `${system}\n${user}`;
  if (/Previous draft:/.test(all)) return "revise";
  if (/Rubric:/.test(all)) return "judge";
  if (/"verdict"/.test(all)) return "critique";
  return "generate";
}

function parsePrompt(messages: BaseMessage[], roleOption: ModelRole | undefined): ParsedPrompt {
  const system = messages
    .filter((m) => m.getType() === "system")
    .map((m) => m.text)
    .join("\n");
  const humans = messages.filter((m) => m.getType() === "human");
  const user = (humans[humans.length - 1] ?? messages[messages.length - 1])?.text ?? "";
  const role = roleOption ?? inferRole(system, user);

  const taskHeader = user.indexOf("Task:\n");
  let task: string;
  let afterTask: number;
  if (taskHeader === -1) {
    task = user.trim();
    afterTask = user.length;
  } else {
    const start = taskHeader + "Task:\n".length;
    const end = user.slice(start).search(TASK_END);
    afterTask = end === -1 ? user.length : start + end;
    task = user.slice(start, afterTask).trim();
  }

  if (role === "revise") {
    const marker = "Previous draft:\n";
    const at = user.indexOf(marker, Math.min(afterTask, user.length));
    const at2 = at === -1 ? user.indexOf(marker) : at;
    if (at2 === -1) return { role, task, feedback: "", hasFailedChecks: false };
    const body = user.slice(at2 + marker.length);
    const critiqueAt = body.lastIndexOf("\n\nCritique:\n");
    const checksAt = body.lastIndexOf("\n\nFailed checks:\n");
    const draftEnd = [critiqueAt, checksAt].filter((i) => i !== -1);
    const draft = draftEnd.length > 0 ? body.slice(0, Math.min(...draftEnd)) : body;
    const checks =
      checksAt === -1 ? "" : body.slice(checksAt + "\n\nFailed checks:\n".length).trim();
    const critique =
      critiqueAt === -1
        ? ""
        : body.slice(
            critiqueAt + "\n\nCritique:\n".length,
            checksAt > critiqueAt ? checksAt : body.length,
          );
    const notes = user.slice(afterTask, at2);
    const hasFailedChecks = checks
      .split("\n")
      .some((line) => !EMPTY_CHECK_LINE.test(line) && !SOFT_CHECK_LINE.test(line));
    return {
      role,
      task,
      draft,
      feedback: [notes, critique, hasFailedChecks ? checks : ""].join("\n"),
      hasFailedChecks,
    };
  }

  if (role === "critique" || role === "judge") {
    const at = user.indexOf("Draft:\n", Math.min(afterTask, user.length));
    const at2 = at === -1 ? user.indexOf("Draft:\n") : at;
    const draft = at2 === -1 ? "" : user.slice(at2 + "Draft:\n".length);
    return { role, task, draft, feedback: "", hasFailedChecks: false };
  }
  return { role, task, feedback: "", hasFailedChecks: false };
}

/**
 * True when the prompt's lessons block holds a lesson learned on tasks that share at least two
 * terms with this one (its `(learned on: …)` note): the simulation's stand-in for a lesson that
 * carries over from the same task family.
 */
const LESSONS_BLOCK = /\nLessons from earlier, similar tasks[^\n]*\n(?:- [^\n]*(?:\n|$))*/g;

function hasRelevantLesson(messages: BaseMessage[], task: string): boolean {
  const text = messages.map((m) => m.text).join("\n");
  const at = text.indexOf("Lessons from earlier, similar tasks");
  if (at === -1) return false;
  const taskTerms = new Set(tokenize(task));
  for (const m of text.slice(at).matchAll(/\(learned on: ([^)\n]*)\)/g)) {
    const shared = new Set(tokenize(m[1] ?? "").filter((t) => taskTerms.has(t)));
    if (shared.size >= 2) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Role behaviours.

const VAGUE_ISSUES = [
  "The reasoning could be clearer and more carefully checked.",
  "Some parts may contain mistakes; double-check the work before finalizing.",
  "The draft could be more precise and better organized.",
  "Consider verifying the result once more; something may be off.",
];

function score(draw: Draw, label: string, lo: number, hi: number): number {
  return Math.round((lo + draw(label) * (hi - lo)) * 100) / 100;
}

/**
 * A wrong draft whose error no recomputation shows gives the critic nothing to recheck: to find it,
 * it has to solve the task again itself. That is a value draft with no computation (no
 * `a op b = c` line) or whose every step holds (a misread operand), and a JSON draft whose values
 * are all well typed (one is wrong).
 */
function uncheckable(k: Knowledge, draft: string, a: Assessment): boolean {
  if (a.correct) return false;
  if (k.kind === "json") return /has the wrong value/.test(a.problem);
  if (k.kind !== "value" || finalAnswer(draft, k.numeric !== undefined) === undefined) return false;
  return firstWrongStep(draft) === undefined;
}

function runCritique(
  k: Knowledge,
  draft: string,
  o: ResolvedOptions,
  draw: Draw,
  task: string,
): string {
  const a = assess(k, draft);
  // A correlated critic: with probability criticCorrelation the outcome (false alarm, detection,
  // vague miss) comes from a stream keyed by the task and the draft's final answer only, so every
  // critique of that answer agrees, whatever the prompt's wording or the draft's other lines.
  const judged =
    o.criticCorrelation > 0 && draw("critic-correlated") < o.criticCorrelation
      ? createDraw(
          `${o.seed}\u0000critic\u0000${task}\u0000${finalAnswer(draft, k.kind === "value" && k.numeric !== undefined) ?? draft.replace(/\s+/g, " ").trim()}`,
        )
      : draw;
  const vague = () => pick(VAGUE_ISSUES, judged("vague-issue"));
  let out: { verdict: "pass" | "revise"; score: number; issues: string[] };
  if (a.correct) {
    out =
      judged("false-alarm") >= o.falseAlarmRate
        ? { verdict: "pass", score: score(draw, "score", 0.85, 1), issues: [] }
        : judged("false-alarm-specific") < o.specificFalseAlarmRate
          ? {
              verdict: "revise",
              score: score(draw, "score", 0.3, 0.5),
              issues: [falseClaim(k, draft, judged, task)],
            }
          : { verdict: "revise", score: score(draw, "score", 0.55, 0.75), issues: [vague()] };
  } else if (
    judged("detect") < (uncheckable(k, draft, a) ? o.uncheckableDetectRate : o.detectRate)
  ) {
    out = { verdict: "revise", score: score(draw, "score", 0.15, 0.45), issues: [a.problem] };
  } else if (judged("vague-miss") < o.vagueCritiqueRate) {
    out = { verdict: "revise", score: score(draw, "score", 0.5, 0.7), issues: [vague()] };
  } else {
    out = { verdict: "pass", score: score(draw, "score", 0.75, 0.9), issues: [] };
  }
  return JSON.stringify(out);
}

/** A specific but wrong claim about a correct draft: it names a value, a field or a line. */
function falseClaim(k: Knowledge, draft: string, draw: Draw, task: string): string {
  const delta = pick(DELTAS, draw("false-claim-delta"));
  if (k.kind === "value") {
    const given = finalAnswer(draft, k.numeric !== undefined) ?? k.answer;
    const n = parseNumber(given);
    const claimed =
      n !== undefined ? formatNumber(n + delta) : wrongAnswer(given, delta, task, draw);
    return `The final answer ${given} is wrong: it should be ${claimed}.`;
  }
  if (k.kind === "json") {
    const obj = parseJsonObject(draft) ?? {};
    const present = k.fields.filter((f) => Object.prototype.hasOwnProperty.call(obj, f.name));
    const field = present.length > 0 ? pick(present, draw("false-claim-field")) : undefined;
    if (field) {
      return `The field "${field.name}" has the wrong value ${JSON.stringify(obj[field.name])}; recheck it against the task.`;
    }
  }
  return 'The "Summary:" line does not follow from the points above; rewrite the conclusion.';
}

function runJudge(k: Knowledge, draft: string, o: ResolvedOptions, draw: Draw): string {
  const a = assess(k, draft);
  const base = a.correct ? 0.9 : 0.3;
  const noisy = base + (draw("judge-noise") * 2 - 1) * o.judgeNoise;
  const value = Math.round(Math.min(1, Math.max(0, noisy)) * 100) / 100;
  const reason = a.correct
    ? k.kind === "text"
      ? "The draft addresses the task and ends with a clear summary."
      : "The draft reaches the correct result and meets the task's requirements."
    : a.problem;
  return JSON.stringify({ score: value, reason });
}

function runRevise(k: Knowledge, parsed: ParsedPrompt, o: ResolvedOptions, draw: Draw): string {
  const previous = parsed.draft ?? "";
  const a = assess(k, previous);
  if (!a.correct) {
    const specific = parsed.hasFailedChecks || a.mentions(parsed.feedback);
    const fixRate = specific ? o.fixRateSpecific : o.fixRateVague;
    if (draw("fix") < fixRate)
      return writeDraft(k, true, draw, "revised", parsed.task, o.invisibleErrorRate);
    if (!specific && draw("unchanged") < o.unchangedRate) return previous;
    return writeDraft(k, false, draw, "revised", parsed.task, o.invisibleErrorRate);
  }
  if (draw("break") < o.breakRate)
    return writeDraft(k, false, draw, "revised", parsed.task, o.invisibleErrorRate);
  if (draw("unchanged") < o.unchangedRate) return previous;
  return writeDraft(k, true, draw, "revised", parsed.task, o.invisibleErrorRate);
}

// ---------------------------------------------------------------------------------------------
// PASR output (core/pasr.ts): `<think>` with the first line of reasoning and, when a wrong one is
// caught, a `<refine>` segment; then `<answer>` with the answer as it stands.

/** True when the system prompt asks for the PASR format (it names both `<refine>` and `<answer>`). */
function asksForPasr(messages: BaseMessage[]): boolean {
  const system = messages
    .filter((m) => m.getType() === "system")
    .map((m) => m.text)
    .join("\n");
  return /<refine>/i.test(system) && /<answer>/i.test(system);
}

function writePasr(
  k: Knowledge,
  first: string,
  draw: Draw,
  o: ResolvedOptions,
  task: string,
): string {
  const a = assess(k, first);
  const refined = !a.correct && draw("pasr-fix") < o.pasrFixRate;
  const answer = refined ? writeDraft(k, true, draw, "revised", task, 0) : first;
  const think = refined
    ? `${first}\n<refine>\n${a.problem} Corrected:\n${answer}\n</refine>\nContinuing from the corrected work.`
    : first;
  const close = draw("pasr-format") < o.pasrFormatErrorRate ? "" : "\n</answer>";
  return `<think>\n${think}\n</think>\n<answer>\n${answer}${close}`;
}

// ---------------------------------------------------------------------------------------------
// The model.

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === "string" ? reason : "The operation was aborted.");
  error.name = "AbortError";
  return error;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Splits text into a few pieces at whitespace boundaries; the pieces join back to the text. */
function splitIntoChunks(text: string, maxPieces = 6): string[] {
  if (text.length === 0) return [""];
  const pieces = Math.max(1, Math.min(maxPieces, Math.ceil(text.length / 12)));
  const target = Math.ceil(text.length / pieces);
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + target);
    if (end < text.length) {
      const space = text.indexOf(" ", end);
      const newline = text.indexOf("\n", end);
      const cut = [space, newline].filter((i) => i !== -1);
      end = cut.length > 0 ? Math.min(...cut) + 1 : text.length;
    }
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

interface SimulatedCall {
  text: string;
  usage: UsageMetadata;
}

export class SimulatedChatModel extends BaseChatModel<RefineryCallOptions> {
  readonly simulated = true as const;
  readonly options: Readonly<ResolvedOptions>;
  private readonly repeats = new Map<number, number>();

  static override lc_name(): string {
    return "SimulatedChatModel";
  }

  /**
   * @param options simulation parameters (validated; unknown keys are rejected)
   * @param base LangChain base fields such as callbacks, tags or metadata
   * @throws RefineryError `invalid_config` naming the offending option
   */
  constructor(options: SimulatedModelOptions = {}, base: BaseChatModelParams = {}) {
    super(base);
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) throw fromZodError(parsed.error, "simulatedModel", "invalid_config");
    this.options = Object.freeze(parsed.data);
  }

  _llmType(): string {
    return SIMULATED_MODEL_NAME;
  }

  override getLsParams(options: this["ParsedCallOptions"]): LangSmithParams {
    return {
      ...super.getLsParams(options),
      ls_provider: "refinery",
      ls_model_name: SIMULATED_MODEL_NAME,
    };
  }

  override invocationParams(): Record<string, unknown> {
    return { model: SIMULATED_MODEL_NAME, seed: this.options.seed };
  }

  /** The simulation's ground truth: is `draft` a correct answer to `task`? For benchmarks. */
  isCorrect(task: string, draft: string): boolean {
    return assess(understand(task.trim(), this.options), draft).correct;
  }

  /** The answer the simulation considers correct, or undefined for free-text tasks. */
  expectedAnswer(task: string): string | undefined {
    const k = understand(task.trim(), this.options);
    if (k.kind === "value") return k.answer;
    if (k.kind === "json") {
      return JSON.stringify(Object.fromEntries(k.fields.map((f) => [f.name, f.value])));
    }
    return undefined;
  }

  /** Computes the whole response for one call; pure apart from the repeat counter. */
  private respond(messages: BaseMessage[], options: this["ParsedCallOptions"]): SimulatedCall {
    const parsed = parsePrompt(messages, options.refineryRole);
    // The instructions (system messages) are left out of the key: two prompts that show the
    // model the same task, draft and feedback draw the same outcome whatever their wording, so
    // strategies are compared on common random numbers rather than on luck.
    // So is a lessons block (core/memory): a run with the memory on draws the same outcomes as
    // the same run with it off, and differs only where a lesson changes a probability.
    const promptText = messages
      .filter((m) => m.getType() !== "system")
      .map((m) => `${m.getType()}: ${m.text.replace(LESSONS_BLOCK, "")}`)
      .join("\n");
    let key = `${this.options.seed}\u0000${parsed.role}\u0000${parsed.task}\u0000${promptText}`;
    if (this.options.varyRepeats) {
      const h = hashString(key);
      // Bounded so a long-lived server cannot grow it without limit; a reset restarts counts.
      if (this.repeats.size >= 100_000) this.repeats.clear();
      const n = this.repeats.get(h) ?? 0;
      this.repeats.set(h, n + 1);
      key += `\u0000${n}`;
    }
    const draw = createDraw(key);
    const k = understand(parsed.task, this.options);
    const o = ratesFor(this.options, familyOf(k));

    let text: string;
    switch (parsed.role) {
      case "generate":
        text = writeDraft(
          k,
          draw("first-draft") >=
            o.firstDraftErrorRate *
              (hasRelevantLesson(messages, parsed.task) ? 1 - o.lessonBenefit : 1),
          draw,
          "first",
          parsed.task,
          o.invisibleErrorRate,
        );
        if (asksForPasr(messages)) text = writePasr(k, text, draw, o, parsed.task);
        break;
      case "critique":
        text = runCritique(k, parsed.draft ?? "", o, draw, parsed.task);
        break;
      case "judge":
        text = runJudge(k, parsed.draft ?? "", o, draw);
        break;
      case "revise":
        text =
          parsed.draft === undefined
            ? writeDraft(
                k,
                draw("first-draft") >= o.firstDraftErrorRate,
                draw,
                "first",
                parsed.task,
                o.invisibleErrorRate,
              )
            : runRevise(k, parsed, o, draw);
        break;
    }

    const promptChars = messages.reduce((sum, m) => sum + m.text.length, 0);
    const input = Math.ceil(promptChars / o.charsPerToken);
    const output = Math.ceil(text.length / o.charsPerToken) + o.reasoningTokens;
    const usage: UsageMetadata = {
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
      ...(o.reasoningTokens > 0 ? { output_token_details: { reasoning: o.reasoningTokens } } : {}),
    };
    return { text, usage };
  }

  private static metadata(): Record<string, unknown> {
    return { model_name: SIMULATED_MODEL_NAME, simulated: true };
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
    _runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    options.signal?.throwIfAborted();
    const { text, usage } = this.respond(messages, options);
    await sleep(this.options.latencyMs, options.signal);
    const message = new AIMessage({
      content: text,
      response_metadata: SimulatedChatModel.metadata(),
      usage_metadata: usage,
    });
    return {
      generations: [{ text, message }],
      llmOutput: {
        tokenUsage: {
          promptTokens: usage.input_tokens,
          completionTokens: usage.output_tokens,
          totalTokens: usage.total_tokens,
        },
      },
    };
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    options.signal?.throwIfAborted();
    const { text, usage } = this.respond(messages, options);
    const pieces = splitIntoChunks(text);
    const pause = this.options.latencyMs / pieces.length;
    for (let i = 0; i < pieces.length; i++) {
      await sleep(pause, options.signal);
      const piece = pieces[i] ?? "";
      const last = i === pieces.length - 1;
      // Usage and metadata ride on the last chunk only: chunk merging sums numbers and
      // concatenates strings.
      const chunk = new ChatGenerationChunk({
        text: piece,
        message: new AIMessageChunk({
          content: piece,
          ...(last
            ? { response_metadata: SimulatedChatModel.metadata(), usage_metadata: usage }
            : {}),
        }),
      });
      yield chunk;
      await runManager?.handleLLMNewToken(
        piece,
        { prompt: 0, completion: 0 },
        undefined,
        undefined,
        undefined,
        {
          chunk,
        },
      );
    }
  }
}

/** True for the offline simulated model (e.g. to print SIMULATED_MODEL_NOTICE). */
export function isSimulatedModel(model: unknown): model is SimulatedChatModel {
  return model instanceof SimulatedChatModel;
}

export function createSimulatedModel(
  options: SimulatedModelOptions = {},
  base: BaseChatModelParams = {},
): SimulatedChatModel {
  return new SimulatedChatModel(options, base);
}
