// Entry point of the verifiers: parse specs (shape errors name the field), build verifiers
// (deeper checks: regexes and schemas compile, a judge exists), and run them deterministic-first
// so that token-costing checks come last and a crashing check never crashes the run.
import { closest } from "../suggest.ts";
import type { z } from "zod";
import { fromZodError, RefineryError } from "../errors.ts";
import type { ModelInvoker } from "../models/types.ts";
import type { TokenUsage } from "../usage.ts";
import { createAnswerMatchVerifier } from "./answer-match.ts";
import { createArithmeticStepsVerifier } from "./arithmetic-steps.ts";
import { createConstraintsVerifier } from "./constraints.ts";
import { createJsonSchemaVerifier, isZodSchema, jsonSchemaFromZod } from "./json-schema.ts";
import { createLlmJudgeVerifier } from "./llm-judge.ts";
import { createRegexVerifier } from "./regex.ts";
import {
  answerMatchSpecSchema,
  arithmeticStepsSpecSchema,
  constraintsSpecSchema,
  jsonSchemaSpecSchema,
  llmJudgeSpecSchema,
  regexSpecSchema,
  VERIFIER_ERROR_PREFIX,
  VERIFIER_KINDS,
  verifierSpecSchema,
  webhookSpecSchema,
  type JsonSchemaVerifierSpec,
  type VerifierSpec,
  type VerifierSpecInput,
} from "./spec.ts";
import type { Verdict, Verifier, VerifierKind, VerifyContext } from "./types.ts";
import { createWebhookVerifier } from "./webhook.ts";

export * from "./spec.ts";
export type * from "./types.ts";
export { createAnswerMatchVerifier, extractFinalAnswer, parseNumbers } from "./answer-match.ts";
export {
  checkArithmeticSteps,
  createArithmeticStepsVerifier,
  describeWrongStep,
} from "./arithmetic-steps.ts";
export { createConstraintsVerifier } from "./constraints.ts";
export { createJsonSchemaVerifier, extractJson } from "./json-schema.ts";
export { createLlmJudgeVerifier, parseJudgeReply } from "./llm-judge.ts";
export { createRegexVerifier } from "./regex.ts";
export { createWebhookVerifier } from "./webhook.ts";

const SPEC_SCHEMAS: Record<VerifierKind, z.ZodObject> = {
  json_schema: jsonSchemaSpecSchema,
  regex: regexSpecSchema,
  answer_match: answerMatchSpecSchema,
  constraints: constraintsSpecSchema,
  arithmetic_steps: arithmeticStepsSpecSchema,
  llm_judge: llmJudgeSpecSchema,
  webhook: webhookSpecSchema,
};

/**
 * Validates verifier specs from JSON, YAML, the CLI or TypeScript. Errors are `invalid_config`
 * and name the field, e.g. `verifiers[1].pattern`.
 */
export function parseVerifierSpecs(input: unknown, fieldPrefix = "verifiers"): VerifierSpec[] {
  if (!Array.isArray(input)) {
    throw new RefineryError("invalid_config", "verifiers must be a list of verifier specs", {
      field: fieldPrefix,
      fix: 'give a list, e.g. [{"kind": "answer_match", "expected": 42}]',
    });
  }
  const converted = input.map((spec: unknown, i) => {
    if (spec === null || typeof spec !== "object") return spec;
    const record = spec as Record<string, unknown>;
    if (record.kind !== "json_schema" || !isZodSchema(record.schema)) return spec;
    return { ...record, schema: jsonSchemaFromZod(record.schema, `${fieldPrefix}[${i}]`) };
  });
  const result = verifierSpecSchema.array().safeParse(converted);
  if (result.success) return result.data;

  const issue = result.error.issues[0];
  if (!issue) throw fromZodError(result.error, fieldPrefix, "invalid_config");
  const index = typeof issue.path[0] === "number" ? issue.path[0] : undefined;
  const kind = index === undefined ? undefined : kindOf(converted[index]);
  // zod reports an unknown key at the object; naming the key itself is what the user needs.
  const unknownKey = issue.code === "unrecognized_keys" ? issue.keys[0] : undefined;
  const path = unknownKey === undefined ? issue.path : [...issue.path, unknownKey];
  const base = fromZodError(
    // Already pointed at the key: not an unrecognized_keys issue any more for fromZodError.
    { issues: [{ ...issue, path, code: "custom" }, ...result.error.issues.slice(1)] },
    fieldPrefix,
    "invalid_config",
  );
  let fix: string | undefined;
  if (unknownKey !== undefined && kind) {
    const fields = Object.keys(SPEC_SCHEMAS[kind].shape);
    const near = closest(unknownKey, fields);
    fix = near
      ? `did you mean "${near}"?`
      : `remove ${JSON.stringify(unknownKey)}; fields of a ${kind} verifier: ${fields.join(", ")}`;
  } else if (issue.code === "invalid_union" && issue.path.at(-1) === "kind") {
    fix = `set kind to one of: ${VERIFIER_KINDS.join(", ")}`;
  }
  throw new RefineryError("invalid_config", base.message, {
    field: base.field,
    fix,
    cause: result.error,
  });
}

function kindOf(spec: unknown): VerifierKind | undefined {
  const kind = (spec as { kind?: unknown } | null)?.kind;
  return VERIFIER_KINDS.find((k) => k === kind);
}

export interface VerifierDeps {
  /** Required when any spec is an llm_judge. */
  judge?: ModelInvoker;
}

/**
 * Builds verifiers from specs (validated again here, so raw input is fine), sorted
 * deterministic-first and otherwise in spec order. Ids default to the kind, then kind-2, kind-3.
 */
export function createVerifiers(
  specs: readonly VerifierSpecInput[],
  deps: VerifierDeps = {},
  fieldPrefix = "verifiers",
): Verifier[] {
  const parsed = parseVerifierSpecs(specs, fieldPrefix);
  const ids = assignIds(parsed, fieldPrefix);
  const built = parsed.map((spec, i) =>
    createVerifier(spec, ids[i] ?? spec.kind, deps, `${fieldPrefix}[${i}]`),
  );
  return [...built.filter((v) => v.deterministic), ...built.filter((v) => !v.deterministic)];
}

function createVerifier(
  spec: VerifierSpec,
  id: string,
  deps: VerifierDeps,
  field: string,
): Verifier {
  switch (spec.kind) {
    case "json_schema":
      return createJsonSchemaVerifier(spec, id, field);
    case "regex":
      return createRegexVerifier(spec, id, field);
    case "answer_match":
      return createAnswerMatchVerifier(spec, id, field);
    case "constraints":
      return createConstraintsVerifier(spec, id);
    case "arithmetic_steps":
      return createArithmeticStepsVerifier(spec, id);
    case "llm_judge":
      if (!deps.judge) {
        throw new RefineryError(
          "invalid_config",
          "an llm_judge verifier needs a judge model, and none is configured",
          { field, fix: "configure a judge model for the run, or remove this verifier" },
        );
      }
      return createLlmJudgeVerifier(spec, id, deps.judge);
    case "webhook":
      return createWebhookVerifier(spec, id, field);
  }
}

function assignIds(specs: readonly VerifierSpec[], fieldPrefix: string): string[] {
  const taken = new Map<string, number>();
  specs.forEach((spec, i) => {
    if (spec.id === undefined) return;
    const first = taken.get(spec.id);
    if (first !== undefined) {
      throw new RefineryError(
        "invalid_config",
        `duplicate verifier id ${JSON.stringify(spec.id)} (also used by ${fieldPrefix}[${first}])`,
        { field: `${fieldPrefix}[${i}].id`, fix: "give each verifier a unique id" },
      );
    }
    taken.set(spec.id, i);
  });
  return specs.map((spec, i) => {
    if (spec.id !== undefined) return spec.id;
    let id: string = spec.kind;
    for (let n = 2; taken.has(id); n++) id = `${spec.kind}-${n}`;
    taken.set(id, i);
    return id;
  });
}

/** A json_schema spec from a zod schema, for TypeScript callers. */
export function specFromZod(
  schema: z.ZodType,
  options: { id?: string; hard?: boolean } = {},
): JsonSchemaVerifierSpec {
  return {
    kind: "json_schema",
    schema: jsonSchemaFromZod(schema),
    hard: options.hard ?? true,
    ...(options.id === undefined ? {} : { id: options.id }),
  };
}

/**
 * Runs deterministic verifiers first, in order, then the others concurrently (they wait on
 * models or the network). Verdicts come back in that order. A verifier that throws yields a
 * failed verdict marked VERIFIER_ERROR_PREFIX; only an abort of `ctx.signal` propagates.
 */
export async function runVerifiers(
  verifiers: readonly Verifier[],
  draft: string,
  ctx: VerifyContext,
): Promise<Verdict[]> {
  ctx.signal?.throwIfAborted();
  const verdicts: Verdict[] = [];
  for (const verifier of verifiers.filter((v) => v.deterministic)) {
    verdicts.push(await runOne(verifier, draft, ctx));
  }
  const others = verifiers.filter((v) => !v.deterministic);
  verdicts.push(...(await Promise.all(others.map((v) => runOne(v, draft, ctx)))));
  return verdicts;
}

async function runOne(verifier: Verifier, draft: string, ctx: VerifyContext): Promise<Verdict> {
  const started = performance.now();
  const base = {
    verifierId: verifier.id,
    kind: verifier.kind,
    hard: verifier.hard,
    iteration: ctx.iteration,
  };
  try {
    const result = await verifier.verify(draft, ctx);
    return {
      ...base,
      ...result,
      // Custom verifiers are outside our control; a score outside 0..1 would skew best-so-far.
      score: Number.isFinite(result.score) ? Math.min(1, Math.max(0, result.score)) : 0,
      latencyMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    ctx.signal?.throwIfAborted();
    const detail =
      error instanceof RefineryError
        ? error.toLine()
        : error instanceof Error
          ? error.message
          : String(error);
    // A model-backed verifier that failed still spent its attempts (ModelCallError.usage).
    const usage = (error as { usage?: TokenUsage } | null)?.usage;
    return {
      ...base,
      pass: false,
      score: 0,
      message: `${VERIFIER_ERROR_PREFIX}${verifier.kind} verifier ${JSON.stringify(verifier.id)} failed to run: ${detail}`,
      ...(usage && typeof usage.calls === "number" ? { usage } : {}),
      latencyMs: Math.round(performance.now() - started),
    };
  }
}
