// Verifier specs: the JSON/YAML/CLI form of a verifier, validated with zod before any factory
// runs. Checks that need more than shape (regexes compile, JSON Schemas compile) live in the
// factories, which know how to name the offending field.
import { z } from "zod";
import type { VerifierKind } from "./types.ts";

export const VERIFIER_KINDS = [
  "json_schema",
  "regex",
  "answer_match",
  "constraints",
  "arithmetic_steps",
  "llm_judge",
  "webhook",
] as const satisfies readonly VerifierKind[];

/** Kinds that cost no tokens and give the same verdict for the same draft; they run first. */
export const DETERMINISTIC_KINDS: ReadonlySet<VerifierKind> = new Set<VerifierKind>([
  "json_schema",
  "regex",
  "answer_match",
  "constraints",
  "arithmetic_steps",
]);

export function isDeterministicKind(kind: VerifierKind): boolean {
  return DETERMINISTIC_KINDS.has(kind);
}

/**
 * Starts the message of a failed verdict that says nothing about the draft: the check itself
 * could not run (webhook down, judge reply unreadable, verifier crashed). Engines can tell these
 * apart from real failures and keep them out of the reviser's feedback.
 */
export const VERIFIER_ERROR_PREFIX = "[verifier error] ";

export function isVerifierErrorMessage(message: string): boolean {
  return message.startsWith(VERIFIER_ERROR_PREFIX);
}

const id = z
  .string()
  .trim()
  .min(1, "id must not be empty")
  .max(100, "id must be at most 100 characters")
  .optional();

// Deterministic checks gate acceptance by default; an LLM judge is a soft signal by default
// because judges are noisy (BACKGROUND.md, lesson 2).
const hardByDefault = z.boolean().default(true);
const softByDefault = z.boolean().default(false);

const nonEmptyStrings = (what: string) =>
  z.array(z.string().min(1, `${what} must not be an empty string`));

export const jsonSchemaSpecSchema = z.strictObject({
  kind: z.literal("json_schema"),
  id,
  hard: hardByDefault,
  /** A JSON Schema document (draft 2020-12 by default; 2019-09 and draft-07 via `$schema`). */
  schema: z.record(z.string(), z.unknown(), {
    error: 'schema must be a JSON Schema object, e.g. {"type": "object"}',
  }),
});

export const regexSpecSchema = z
  .strictObject({
    kind: z.literal("regex"),
    id,
    hard: hardByDefault,
    mustMatch: nonEmptyStrings("a mustMatch pattern").optional(),
    mustNotMatch: nonEmptyStrings("a mustNotMatch pattern").optional(),
    flags: z
      .string()
      .regex(/^[dgimsuvy]*$/, "flags may only contain the JavaScript RegExp flags dgimsuvy")
      .optional(),
  })
  .refine((s) => (s.mustMatch?.length ?? 0) + (s.mustNotMatch?.length ?? 0) > 0, {
    message: "a regex verifier needs at least one pattern in mustMatch or mustNotMatch",
    path: ["mustMatch"],
  });

export const answerMatchSpecSchema = z.strictObject({
  kind: z.literal("answer_match"),
  id,
  hard: hardByDefault,
  expected: z.union([z.string().trim().min(1), z.number().finite()], {
    error: "expected must be a non-empty string or a finite number",
  }),
  /**
   * Default: numeric when `expected` is a number or a numeric string, exact otherwise. math:
   * symbolic equivalence of LaTeX answers (MATH); choice: the chosen option's label (needs
   * `choices`); qa: SQuAD-normalised exact match against `expected` or any of `alternatives`.
   */
  mode: z.enum(["exact", "numeric", "math", "choice", "qa"]).optional(),
  /** choice mode: the options, in order, e.g. [{"label": "A", "text": "Paris"}]. */
  choices: z
    .array(
      z.strictObject({
        label: z.string().trim().min(1, "a choice label must not be empty"),
        text: z.string(),
      }),
    )
    .min(2, "choices needs at least two options")
    .optional(),
  /** qa mode: other accepted answers (SQuAD lists several per question). */
  alternatives: z.array(z.string().trim().min(1)).optional(),
  /** qa mode: pass when token F1 reaches this instead of requiring an exact match. */
  minF1: z.number().min(0).max(1).optional(),
  /** Absolute tolerance for numeric mode. */
  tolerance: z.number().nonnegative().default(1e-6),
  /** Relative tolerance for numeric mode; a match within either tolerance passes. */
  relativeTolerance: z.number().nonnegative().optional(),
  caseSensitive: z.boolean().default(false),
  // The failure message is fed to the reviser; naming the expected answer there turns the run
  // into "Self-Refine+ with ground truth". Benchmarks that must not leak it set this to false.
  revealExpected: z.boolean().default(true),
});

export const constraintsSpecSchema = z
  .strictObject({
    kind: z.literal("constraints"),
    id,
    hard: hardByDefault,
    minLength: z.number().int().nonnegative().optional(),
    maxLength: z.number().int().nonnegative().optional(),
    unit: z.enum(["chars", "words"]).default("words"),
    contains: nonEmptyStrings("a contains entry").optional(),
    notContains: nonEmptyStrings("a notContains entry").optional(),
    caseSensitive: z.boolean().default(false),
  })
  .refine(
    (s) =>
      s.minLength !== undefined ||
      s.maxLength !== undefined ||
      (s.contains?.length ?? 0) > 0 ||
      (s.notContains?.length ?? 0) > 0,
    {
      message:
        "a constraints verifier needs at least one of minLength, maxLength, contains, notContains",
      path: ["minLength"],
    },
  )
  .refine(
    (s) => s.minLength === undefined || s.maxLength === undefined || s.minLength <= s.maxLength,
    { message: "minLength must not be greater than maxLength", path: ["maxLength"] },
  );

export const arithmeticStepsSpecSchema = z.strictObject({
  kind: z.literal("arithmetic_steps"),
  id,
  hard: hardByDefault,
  /**
   * Absolute tolerance when a step's written result is compared with its recomputed value, on
   * top of the precision the result was written with (`10 / 3 = 3.33` passes regardless).
   */
  tolerance: z
    .number({ error: "tolerance must be a number, e.g. 0.001" })
    .nonnegative("tolerance must not be negative")
    .default(1e-6),
});

export const llmJudgeSpecSchema = z.strictObject({
  kind: z.literal("llm_judge"),
  id,
  hard: softByDefault,
  rubric: z.string().trim().min(1, "rubric must not be empty"),
  threshold: z.number().min(0).max(1).default(0.7),
  /** Overrides DEFAULT_PROMPTS.judge; placeholders: {rubric} {task} {draft} {context}. */
  prompt: z
    .strictObject({
      system: z.string().min(1).optional(),
      user: z.string().min(1).optional(),
    })
    .optional(),
});

export const webhookSpecSchema = z.strictObject({
  kind: z.literal("webhook"),
  id,
  hard: hardByDefault,
  url: z.url({ protocol: /^https?$/, error: "url must be an absolute http:// or https:// URL" }),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(120_000, "timeoutMs must be at most 120000 (2 minutes)")
    .default(10_000),
  headers: z.record(z.string(), z.string()).optional(),
});

const KNOWN_KINDS_TEXT = VERIFIER_KINDS.join(", ");

export const verifierSpecSchema = z.discriminatedUnion(
  "kind",
  [
    jsonSchemaSpecSchema,
    regexSpecSchema,
    answerMatchSpecSchema,
    constraintsSpecSchema,
    arithmeticStepsSpecSchema,
    llmJudgeSpecSchema,
    webhookSpecSchema,
  ],
  {
    // zod hands over the whole spec object here, not just its kind.
    error: (issue) => {
      if (issue.code !== "invalid_union") return undefined;
      const kind = (issue.input as { kind?: unknown } | undefined)?.kind;
      return kind === undefined
        ? `missing verifier kind; known kinds: ${KNOWN_KINDS_TEXT}`
        : `unknown verifier kind ${JSON.stringify(kind)}; known kinds: ${KNOWN_KINDS_TEXT}`;
    },
  },
);

export type JsonSchemaVerifierSpec = z.output<typeof jsonSchemaSpecSchema>;
export type RegexVerifierSpec = z.output<typeof regexSpecSchema>;
export type AnswerMatchVerifierSpec = z.output<typeof answerMatchSpecSchema>;
export type ConstraintsVerifierSpec = z.output<typeof constraintsSpecSchema>;
export type ArithmeticStepsVerifierSpec = z.output<typeof arithmeticStepsSpecSchema>;
export type LlmJudgeVerifierSpec = z.output<typeof llmJudgeSpecSchema>;
export type WebhookVerifierSpec = z.output<typeof webhookSpecSchema>;

/** A validated spec, defaults filled in. */
export type VerifierSpec = z.output<typeof verifierSpecSchema>;

/**
 * What callers may write. TypeScript callers may also pass a zod schema as a json_schema
 * `schema`; it is converted with `z.toJSONSchema` before validation.
 */
export type VerifierSpecInput =
  | Exclude<z.input<typeof verifierSpecSchema>, { kind: "json_schema" }>
  | (Omit<z.input<typeof jsonSchemaSpecSchema>, "schema"> & {
      schema: Record<string, unknown> | z.ZodType;
    });
