// Refinement options: the limits, verifiers, prompts and models of one refinement variant.
// The same schema validates a CLI config file, CLI flags, an assistant's config and a run's
// `configurable`, so every entry point reports the same precise errors.
import { z } from "zod";
import { ApprovalOptionsSchema } from "./approval.ts";
import { stateLimitsOf, type StateLimits } from "./checkpointer.ts";
import { ENV_DEFAULTS, readEnv } from "./env.ts";
import { suggestion } from "./suggest.ts";
import { fromZodError, RefineryError } from "./errors.ts";
import { parseModelEndpoints, type ModelEndpoints } from "./models/endpoints.ts";

export const ModelSpecSchema = z
  .object({
    provider: z
      .enum(["openai", "simulated"])
      .optional()
      .describe(
        "openai = any OpenAI-compatible endpoint; simulated = the offline model. Default: openai when an API key is set.",
      ),
    model: z.string().min(1).optional().describe("Model name, e.g. gpt-4o-mini."),
    baseURL: z.url().optional().describe("OpenAI-compatible base URL (default OPENAI_BASE_URL)."),
    temperature: z.number().min(0).max(2).optional(),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .optional()
      .describe("Per-attempt timeout in ms (default REFINERY_MODEL_TIMEOUT_MS, 60000)."),
    maxTokens: z.number().int().positive().optional(),
    seed: z
      .number()
      .int()
      .optional()
      .describe("Sampling seed sent to the endpoint (best-effort determinism where supported)."),
    n: z
      .number()
      .int()
      .min(1)
      .max(16)
      .optional()
      .describe(
        "Completions per request, sent to the endpoint; Refinery reads the first and counts the usage of all.",
      ),
    simulated: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Options of the offline simulated model."),
  })
  .strict();
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

const PromptOverrideSchema = z
  .object({ system: z.string().min(1).optional(), user: z.string().min(1).optional() })
  .strict();

export const RetrySchema = z
  .object({
    retries: z.number().int().min(0).max(10).optional(),
    baseDelayMs: z.number().int().min(0).max(60_000).optional(),
    maxDelayMs: z.number().int().min(0).max(300_000).optional(),
    deadlineMs: z
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .optional()
      .describe(
        "Longest one model call may take, all attempts and waits included; 0: no limit (default REFINERY_MODEL_DEADLINE_MS, 120000).",
      ),
  })
  .strict();

export const RefineOptionsSchema = z
  .object({
    maxIterations: z
      .number()
      .int()
      .min(1)
      .max(50)
      .optional()
      .describe("Maximum number of drafts (default 3)."),
    tokenBudget: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Total tokens the run may spend, retries included."),
    scoreThreshold: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Accept a draft whose hard verifiers pass at this score (default 0.8)."),
    strategy: z
      .enum(["vanilla", "self-refine", "proactive", "pasr"])
      .optional()
      .describe(
        "vanilla: one draft; self-refine: critique and revise every round; proactive: refine only when checks say it pays; pasr: in-generation refinement (default self-refine).",
      ),
    critique: z.boolean().optional().describe("Allow the LLM critique (default true)."),
    verifiers: z.array(z.unknown()).optional().describe("Verifier specs; see README."),
    prompts: z
      .object({
        generate: PromptOverrideSchema.optional(),
        critique: PromptOverrideSchema.optional(),
        critiqueTargeted: PromptOverrideSchema.optional(),
        localize: PromptOverrideSchema.optional(),
        revise: PromptOverrideSchema.optional(),
        reviseTargeted: PromptOverrideSchema.optional(),
        pasr: PromptOverrideSchema.optional(),
        judge: PromptOverrideSchema.optional(),
      })
      .strict()
      .optional(),
    models: z
      .object({
        default: ModelSpecSchema.optional(),
        generate: ModelSpecSchema.optional(),
        critique: ModelSpecSchema.optional(),
        revise: ModelSpecSchema.optional(),
        judge: ModelSpecSchema.optional(),
      })
      .strict()
      .optional(),
    retry: RetrySchema.optional(),
    approval: ApprovalOptionsSchema.optional().describe("Human approval: when to ask a reviewer."),
    memory: z
      .object({
        enabled: z
          .boolean()
          .optional()
          .describe("Use and learn lessons (default true when the process has a memory)"),
        lessons: z
          .number()
          .int()
          .min(0)
          .max(10)
          .optional()
          .describe("Lessons put in the generate prompt (default 2)"),
      })
      .strict()
      .optional()
      .describe("The lessons memory: lessons learned from earlier runs go into generate's prompt."),
  })
  .strict();
export type RefineOptions = z.infer<typeof RefineOptionsSchema>;

export const REFINE_OPTION_KEYS = Object.keys(RefineOptionsSchema.shape) as (keyof RefineOptions)[];

export const DEFAULT_LIMITS = { maxIterations: 3, scoreThreshold: 0.8 } as const;

/** Validates refine options; `prefix` names where they came from (e.g. `config.configurable`). */
export function parseRefineOptions(input: unknown, prefix = ""): RefineOptions {
  const result = RefineOptionsSchema.safeParse(input ?? {});
  if (!result.success)
    throw fromZodError(result.error, prefix, "invalid_config", RefineOptionsSchema);
  return result.data;
}

/** Keys of a `configurable` that belong to LangGraph or the server, not to refine options. */
const RUNTIME_KEYS = new Set([
  "thread_id",
  "checkpoint_id",
  "checkpoint_ns",
  "checkpoint_map",
  "thread_ts",
  "graph_id",
  // A declarative graph's pinned version (graphs/declarative), checked there.
  "graph_version",
  "assistant_id",
  "run_id",
  "user_id",
  "user-agent",
]);
const RUNTIME_PREFIXES = ["__", "langgraph_", "refinery_", "x-"];

/**
 * A refine graph's `configurable` may hold only refine options and LangGraph's own keys: a
 * misspelt option (`maxIteration`) is an error naming it and the closest option, not a silently
 * ignored setting.
 */
export function checkConfigurableKeys(
  configurable: Record<string, unknown> | undefined,
  prefix = "config.configurable",
): void {
  for (const key of Object.keys(configurable ?? {})) {
    if ((REFINE_OPTION_KEYS as readonly string[]).includes(key) || RUNTIME_KEYS.has(key)) continue;
    if (RUNTIME_PREFIXES.some((p) => key.startsWith(p))) continue;
    throw new RefineryError("invalid_config", `unknown refine option "${key}"`, {
      field: `${prefix}.${key}`,
      fix: suggestion(key, REFINE_OPTION_KEYS, "refine options"),
    });
  }
}

/**
 * Picks Refinery's keys out of a LangGraph `configurable` (which also carries thread_id,
 * checkpoint ids and other callers' keys) and validates them.
 */
export function refineOptionsFromConfigurable(
  configurable: Record<string, unknown> | undefined,
): RefineOptions {
  if (!configurable) return {};
  const picked: Record<string, unknown> = {};
  for (const key of REFINE_OPTION_KEYS) {
    if (configurable[key] !== undefined) picked[key] = configurable[key];
  }
  return parseRefineOptions(picked, "config.configurable");
}

/** Later layers win; nested `prompts`/`models`/`retry` merge per key. */
export function mergeRefineOptions(...layers: (RefineOptions | undefined)[]): RefineOptions {
  const out: RefineOptions = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer) as [keyof RefineOptions, unknown][]) {
      if (value === undefined) continue;
      if (key === "prompts" || key === "models" || key === "retry" || key === "memory") {
        (out as Record<string, unknown>)[key] = {
          ...(out[key] as object | undefined),
          ...(value as object),
        };
      } else {
        (out as Record<string, unknown>)[key] = value;
      }
    }
  }
  return out;
}

/** The settings of the Refinery process: database path and model endpoint, from env and config file. */
export interface ProcessSettings {
  dbPath: string;
  apiKey?: string;
  baseURL?: string;
  /** Base URLs runs may name in `models.*.baseURL` besides `baseURL` (REFINERY_MODEL_ENDPOINTS). */
  modelEndpoints?: ModelEndpoints;
  model: string;
  /** The lessons memory (on unless REFINERY_MEMORY=off). */
  memory?: boolean;
  /** Postgres URL for the lessons store (REFINERY_STORE_URL); default: the SQLite file. */
  storeUrl?: string;
  /** Postgres for all state (REFINERY_DATABASE_URL); default: the SQLite file `dbPath`. */
  database?: {
    url: string;
    schema: string;
    /**
     * Whether Postgres writes packed rows: compactions pack a thread's latest checkpoint
     * (core/storage/postgres/archive.ts), thread values and run kwargs are stored deflated
     * (storage.ts). REFINERY_PACK_CHECKPOINTS, default on; off during a rolling upgrade from a
     * version that cannot read them.
     */
    packCheckpoints?: boolean;
  };
  /** Embeddings model for lesson retrieval (REFINERY_EMBEDDINGS_MODEL); default: lexical. */
  embeddingsModel?: string;
  /** How much state the SQLite checkpointer stores (REFINERY_MAX_*_BYTES); default: 8 / 256 MiB. */
  stateLimits?: StateLimits;
  /** Per-attempt model timeout when a run's `models` sets none (REFINERY_MODEL_TIMEOUT_MS). */
  modelTimeoutMs?: number;
  /** `retry.deadlineMs` when a run sets none (REFINERY_MODEL_DEADLINE_MS). */
  modelDeadlineMs?: number;
}

export function processSettingsFromEnv(
  env: Record<string, string | undefined>,
  file: { db?: string; model?: string; baseURL?: string } = {},
): ProcessSettings {
  const e = readEnv(env);
  return {
    dbPath: e.REFINERY_DB ?? file.db ?? ENV_DEFAULTS.REFINERY_DB,
    ...(e.REFINERY_MODEL_TIMEOUT_MS !== undefined
      ? { modelTimeoutMs: e.REFINERY_MODEL_TIMEOUT_MS }
      : {}),
    ...(e.REFINERY_MODEL_DEADLINE_MS !== undefined
      ? { modelDeadlineMs: e.REFINERY_MODEL_DEADLINE_MS }
      : {}),
    apiKey: e.OPENAI_API_KEY,
    baseURL: e.OPENAI_BASE_URL ?? file.baseURL,
    modelEndpoints: parseModelEndpoints(e.REFINERY_MODEL_ENDPOINTS),
    model: e.REFINERY_MODEL ?? file.model ?? ENV_DEFAULTS.REFINERY_MODEL,
    memory: e.REFINERY_MEMORY,
    stateLimits: stateLimitsOf(e),
    ...(e.REFINERY_STORE_URL ? { storeUrl: e.REFINERY_STORE_URL } : {}),
    ...(e.REFINERY_DATABASE_URL
      ? {
          database: {
            url: e.REFINERY_DATABASE_URL,
            schema: e.REFINERY_DATABASE_SCHEMA ?? "public",
            packCheckpoints: e.REFINERY_PACK_CHECKPOINTS,
          },
        }
      : {}),
    ...(e.REFINERY_EMBEDDINGS_MODEL ? { embeddingsModel: e.REFINERY_EMBEDDINGS_MODEL } : {}),
  };
}
