// The json_schema verifier: finds the JSON in a draft and validates it with ajv, reporting each
// violation as `<JSON pointer> <rule>` so a reviser can fix exactly that spot. `pattern` and
// `patternProperties` run on RE2 (user-regex.ts), so a schema cannot make validation backtrack.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { RegExpEngine } from "ajv/dist/types/index.js";
import { Ajv2019 } from "ajv/dist/2019.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { z } from "zod";
import { RefineryError } from "../errors.ts";
import type { JsonSchemaVerifierSpec } from "./spec.ts";
import type { Verifier } from "./types.ts";
import { compileUserRegex } from "./user-regex.ts";

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the
// module object, so take `.default` when it is there.
const addFormats = addFormatsModule.default ?? addFormatsModule;

/** At most this many violations are listed; the rest are counted. */
const MAX_LISTED_ERRORS = 10;

export type JsonSource = "whole" | "fenced" | "embedded";

export interface ExtractedJson {
  value: unknown;
  source: JsonSource;
}

/**
 * Finds the JSON document in a model reply: the whole text, else a ```json fenced block (or any
 * fenced block that parses), else the largest balanced {...} or [...] that parses.
 */
export function extractJson(text: string): ExtractedJson | undefined {
  const whole = tryParse(text.trim());
  if (whole.ok) return { value: whole.value, source: "whole" };

  const fences = [...text.matchAll(/```[ \t]*([\w-]*)[^\n]*\n([\s\S]*?)```/g)];
  // A block labelled json is the author's explicit choice, so it wins over unlabelled ones.
  const ordered = [
    ...fences.filter((m) => m[1]?.toLowerCase() === "json"),
    ...fences.filter((m) => m[1]?.toLowerCase() !== "json"),
  ];
  for (const fence of ordered) {
    const parsed = tryParse((fence[2] ?? "").trim());
    if (parsed.ok) return { value: parsed.value, source: "fenced" };
  }

  const embedded = largestBalancedJson(text);
  return embedded === undefined ? undefined : { value: embedded.value, source: "embedded" };
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text === "") return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

// Prose often contains brackets that are not JSON ("{see below}") or are JSON by accident
// (citations like "[1]"), so every top-level candidate is tried and the longest one that parses
// wins: the document the user wants is almost always the biggest. The cap keeps a pathological
// draft from costing quadratic time.
const MAX_EMBEDDED_ATTEMPTS = 200;

function largestBalancedJson(text: string): { value: unknown } | undefined {
  let best: { value: unknown; length: number } | undefined;
  let attempts = 0;
  for (let start = 0; start < text.length && attempts < MAX_EMBEDDED_ATTEMPTS; start++) {
    const ch = text[start];
    if (ch !== "{" && ch !== "[") continue;
    attempts++;
    const end = matchingBracket(text, start);
    if (end === undefined) continue;
    const parsed = tryParse(text.slice(start, end + 1));
    if (!parsed.ok) continue;
    const length = end + 1 - start;
    if (!best || length > best.length) best = { value: parsed.value, length };
    start = end;
  }
  return best && { value: best.value };
}

/** Index of the bracket closing the one at `start`, skipping brackets inside JSON strings. */
function matchingBracket(text: string, start: number): number | undefined {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === "{") stack.push("}");
    else if (ch === "[") stack.push("]");
    else if (ch === "}" || ch === "]") {
      if (stack.pop() !== ch) return undefined;
      if (stack.length === 0) return i;
    }
  }
  return undefined;
}

type AnyAjv = Ajv | Ajv2019 | Ajv2020;

/** A pattern of the schema RE2 cannot compile; compileJsonSchema finds where it is. */
class SchemaPatternError extends Error {
  constructor(
    readonly pattern: string,
    readonly refusal: RefineryError,
  ) {
    super(refusal.message);
  }
}

/**
 * ajv's regular expressions, on RE2. ajv keys compiled patterns by `toString()`, so each one
 * names its source. `u` (ajv's unicodeRegExp) changes nothing on RE2.
 */
const re2Engine: RegExpEngine = Object.assign(
  (pattern: string) => {
    let regex;
    try {
      regex = compileUserRegex(pattern, "", "pattern");
    } catch (err) {
      throw err instanceof RefineryError ? new SchemaPatternError(pattern, err) : err;
    }
    return { test: (text: string) => regex.test(text), toString: () => `/${pattern}/` };
  },
  { code: "refineryRe2" },
);

/** Picks the ajv dialect from `$schema`; no `$schema` means draft 2020-12 (what zod emits). */
function ajvFor(schema: Record<string, unknown>, field: string): AnyAjv {
  const declared = typeof schema.$schema === "string" ? schema.$schema : undefined;
  // strict: false because user schemas routinely carry annotations ajv does not know
  // ("example", vendor keywords); invalid uses of known keywords are still rejected.
  const options = { allErrors: true, strict: false, code: { regExp: re2Engine } } as const;
  let ajv: AnyAjv;
  if (declared === undefined || declared.includes("2020-12")) ajv = new Ajv2020(options);
  else if (declared.includes("2019-09")) ajv = new Ajv2019(options);
  else if (declared.includes("draft-07")) ajv = new Ajv(options);
  else {
    throw new RefineryError("invalid_config", `unsupported JSON Schema dialect ${declared}`, {
      field: `${field}.$schema`,
      fix: "use draft 2020-12 (or omit $schema), 2019-09 or draft-07",
    });
  }
  addFormats(ajv);
  return ajv;
}

/**
 * Compiled validators by schema text. Building ajv and compiling a schema costs milliseconds,
 * and every run resolves its verifiers: a server or an evaluation checks the same few schemas
 * over and over. A validator is reused safely: its `errors` are read right after the call, with
 * no await in between. Bounded; the oldest entry goes first.
 */
const COMPILED = new Map<string, ValidateFunction>();
const COMPILED_MAX = 256;

/** Compiles the schema now so that a broken schema fails the config, not every draft. */
export function compileJsonSchema(
  schema: Record<string, unknown>,
  field = "verifier",
): ValidateFunction {
  const key = JSON.stringify(schema);
  const cached = COMPILED.get(key);
  if (cached) return cached;
  const ajv = ajvFor(schema, field);
  try {
    const validate = ajv.compile(schema);
    if (COMPILED.size >= COMPILED_MAX) COMPILED.delete(COMPILED.keys().next().value as string);
    COMPILED.set(key, validate);
    return validate;
  } catch (error) {
    if (error instanceof SchemaPatternError) {
      throw new RefineryError("invalid_config", `invalid JSON Schema: ${error.refusal.message}`, {
        field: `${field}.schema${patternPath(schema, error.pattern) ?? ""}`,
        fix: error.refusal.fix,
        cause: error.refusal,
      });
    }
    throw new RefineryError(
      "invalid_config",
      `invalid JSON Schema: ${error instanceof Error ? error.message : String(error)}`,
      {
        field: `${field}.schema`,
        fix: "correct the schema (check keyword spelling and value types, and that every $ref resolves)",
        cause: error,
      },
    );
  }
}

/**
 * Where `pattern` sits in the schema (`.properties.code.pattern`, `.patternProperties["^x-"]`),
 * for the error; undefined when it is not found (ajv compiled it from elsewhere).
 */
function patternPath(node: unknown, pattern: string, path = "", depth = 0): string | undefined {
  if (depth > 64 || node === null || typeof node !== "object") return undefined;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const found = patternPath(node[i], pattern, `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  const record = node as Record<string, unknown>;
  if (record.pattern === pattern) return `${path}.pattern`;
  const props = record.patternProperties;
  if (props && typeof props === "object" && Object.hasOwn(props, pattern))
    return `${path}.patternProperties[${JSON.stringify(pattern)}]`;
  for (const [key, value] of Object.entries(record)) {
    const step = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    const found = patternPath(value, pattern, `${path}${step}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Converts a zod schema to the JSON Schema of what it accepts (`io: "input"`), since the draft
 * is the raw input the schema would parse.
 */
export function jsonSchemaFromZod(schema: z.ZodType, field = "verifier"): Record<string, unknown> {
  try {
    return z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>;
  } catch (error) {
    throw new RefineryError(
      "invalid_config",
      `zod schema cannot be expressed as JSON Schema: ${error instanceof Error ? error.message : String(error)}`,
      {
        field: `${field}.schema`,
        fix: "use only JSON-representable zod types (no dates, maps, functions or custom checks)",
        cause: error,
      },
    );
  }
}

export function isZodSchema(value: unknown): value is z.ZodType {
  return (
    value instanceof z.ZodType || (typeof value === "object" && value !== null && "_zod" in value)
  );
}

export function createJsonSchemaVerifier(
  spec: JsonSchemaVerifierSpec,
  id: string,
  field = "verifier",
): Verifier {
  const validate = compileJsonSchema(spec.schema, field);
  return {
    id,
    kind: "json_schema",
    hard: spec.hard,
    deterministic: true,
    async verify(draft) {
      const found = extractJson(draft);
      // Scores: 1 valid; 0 no JSON at all; otherwise 0.5 / number of violations, so any
      // parseable draft beats an unparseable one and fewer violations beat more (the engine
      // keeps the best draft so far by score).
      if (!found) {
        return {
          pass: false,
          score: 0,
          message:
            "no JSON found in the draft: reply with a single JSON document " +
            "(the whole reply, or inside a ```json block)",
        };
      }
      if (validate(found.value)) {
        return { pass: true, score: 1, message: `JSON is valid against the schema${where(found)}` };
      }
      const errors = validate.errors ?? [];
      const lines = errors
        .slice(0, MAX_LISTED_ERRORS)
        .map((e) => `- ${describeAjvError(e, found.value)}`);
      if (errors.length > MAX_LISTED_ERRORS) {
        lines.push(`- … and ${errors.length - MAX_LISTED_ERRORS} more`);
      }
      const count = Math.max(errors.length, 1);
      return {
        pass: false,
        score: 0.5 / count,
        message: `JSON${where(found)} does not match the schema (${count} problem${count === 1 ? "" : "s"}):\n${lines.join("\n")}`,
      };
    },
  };
}

function where(found: ExtractedJson): string {
  if (found.source === "fenced") return " (from a fenced code block)";
  if (found.source === "embedded") return " (embedded in prose)";
  return "";
}

/** `<JSON pointer> <rule>`, with the offending value when it is short enough to help. */
export function describeAjvError(error: ErrorObject, data: unknown): string {
  const path = error.instancePath === "" ? "(root)" : error.instancePath;
  const params = error.params as Record<string, unknown>;
  let rule = error.message ?? `fails ${error.keyword}`;
  if (error.keyword === "additionalProperties" && typeof params.additionalProperty === "string") {
    rule = `must NOT have additional property ${JSON.stringify(params.additionalProperty)}`;
  } else if (error.keyword === "enum" && Array.isArray(params.allowedValues)) {
    rule = `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  } else if (error.keyword === "const") {
    rule = `must be equal to ${JSON.stringify(params.allowedValue)}`;
  }
  // For `required` and friends the value is the whole parent object: not worth repeating.
  const value = valueAt(data, error.instancePath);
  const shown =
    value.found && (value.value === null || typeof value.value !== "object")
      ? ` (got ${truncate(JSON.stringify(value.value) ?? String(value.value), 60)})`
      : "";
  return `${path} ${rule}${shown}`;
}

function valueAt(data: unknown, pointer: string): { found: boolean; value?: unknown } {
  if (pointer === "") return { found: true, value: data };
  let current: unknown = data;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (current === null || typeof current !== "object") return { found: false };
    if (!Object.prototype.hasOwnProperty.call(current, key)) return { found: false };
    current = (current as Record<string, unknown>)[key];
  }
  return { found: true, value: current };
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
