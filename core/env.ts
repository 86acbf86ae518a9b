// Every environment setting Refinery reads, in one zod schema checked at start-up: a bad value
// stops the server or the CLI with one line naming the variable and the fix, before anything is
// opened; a REFINERY_* name the schema does not know is reported with the closest known name.
// Modules take the parsed values from here instead of reading process.env themselves.
import { z } from "zod";
import { RefineryError } from "./errors.ts";
import { closest } from "./suggest.ts";

/** Defaults a setting falls back to when unset (or set to the empty string). */
export const ENV_DEFAULTS = {
  REFINERY_DB: "./data/refinery.db",
  REFINERY_MODEL: "gpt-4o-mini",
  REFINERY_WORKERS: 64,
  REFINERY_STREAM_RETAIN_RUNS: 500,
  REFINERY_EVAL_THREADS: 1,
  REFINERY_RUN_THREAD_HEAP_MB: 512,
  REFINERY_EVAL_MAX_RUNS: 20_000,
  REFINERY_EVAL_MAX_JOBS: 2,
  REFINERY_KEEPALIVE_MS: 15_000,
  REFINERY_MAX_RECURSION_LIMIT: 1000,
  REFINERY_STEP_TIMEOUT_MS: 300_000,
  REFINERY_RUN_TIMEOUT_MS: 1_800_000,
  REFINERY_SCHEMA_TIMEOUT_MS: 30_000,
  REFINERY_SHUTDOWN_GRACE_MS: 10_000,
  REFINERY_APPROVAL_POLL_MS: 1000,
  REFINERY_THREAD_SWEEP_MS: 60_000,
  REFINERY_RUN_LEASE_MS: 30_000,
  REFINERY_TENANT_MAX_CRONS: 100,
  REFINERY_MAX_CHECKPOINT_BYTES: 8 * 1024 * 1024,
  REFINERY_MAX_THREAD_BYTES: 256 * 1024 * 1024,
  REFINERY_BODY_LIMIT: "1mb",
} as const;

const FIX = "refinery_fix";

/** Marks an issue with the fix the error will carry. */
function issue(ctx: z.RefinementCtx, message: string, fix: string): typeof z.NEVER {
  ctx.addIssue({ code: "custom", message, params: { [FIX]: fix } });
  return z.NEVER;
}

const unset = (raw: string | undefined): raw is undefined => raw === undefined || raw.trim() === "";

interface IntSpec<F extends number | undefined> {
  fallback: F;
  min: number;
  max: number;
  what: string;
  example: string;
}

/** Why `raw` is not an integer from `min` to `max` (the error's message), or undefined. */
function intProblem(raw: string | number, spec: IntSpec<number | undefined>): string | undefined {
  const n = typeof raw === "number" ? raw : Number(raw.trim());
  return Number.isInteger(n) && n >= spec.min && n <= spec.max
    ? undefined
    : `${spec.what} must be an integer from ${spec.min} to ${spec.max}, not ${JSON.stringify(raw)}`;
}

/** An integer from `min` to `max`; `fallback` when unset. */
function int<F extends number | undefined>(spec: IntSpec<F>) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): number | F => {
      if (unset(raw)) return spec.fallback;
      const problem = intProblem(raw, spec);
      return problem ? issue(ctx, problem, `set it to ${spec.example}`) : Number(raw.trim());
    });
}

/**
 * The same integer rule for a setting that does not come from the environment (a flag such as
 * --port, or an option given in code): `fallback` when unset, else an error naming `field`.
 */
export function intSetting(
  raw: string | number | undefined,
  field: string,
  spec: IntSpec<number>,
): number {
  if (raw === undefined || raw === "") return spec.fallback;
  const problem = intProblem(raw, spec);
  if (problem) {
    throw new RefineryError("invalid_config", problem, {
      field,
      fix: `set ${field} to ${spec.example}`,
    });
  }
  return typeof raw === "number" ? raw : Number(raw.trim());
}

export const PORT_SPEC: IntSpec<number> = {
  fallback: 8123,
  min: 0,
  max: 65535,
  what: "a port",
  example: "a port such as 8123, or 0 for any free port",
};

/** Free text (a path, a name, a list parsed where it is used); undefined when unset. */
const text = () =>
  z
    .string()
    .optional()
    .transform((raw) => (unset(raw) ? undefined : raw));

/** One of `values` (case-insensitive); `fallback` when unset. */
function oneOf<const V extends string>(values: readonly V[], fallback: V, fix: string) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): V => {
      if (unset(raw)) return fallback;
      const v = raw.trim().toLowerCase() as V;
      if (values.includes(v)) return v;
      return issue(
        ctx,
        `the value must be one of ${values.join(", ")}, not ${JSON.stringify(raw)}`,
        fix,
      );
    });
}

const flag = (fix: string) =>
  oneOf(["on", "off", "true", "false", "1", "0", "yes", "no"], "off", fix).transform((v) =>
    ["on", "true", "1", "yes"].includes(v),
  );

/** A Redis URL (redis:// or rediss://); undefined when unset. Credentials are never echoed. */
const redisUrl = () =>
  z
    .string()
    .optional()
    .transform((raw, ctx): string | undefined => {
      if (unset(raw)) return undefined;
      let protocol = "";
      try {
        protocol = new URL(raw.trim()).protocol;
      } catch {
        // reported below
      }
      if (protocol === "redis:" || protocol === "rediss:") return raw.trim();
      return issue(
        ctx,
        "the value must be a Redis URL (redis://host:port or rediss://host:port)",
        "set it to a URL such as redis://127.0.0.1:6379, or leave it unset (workers then poll the database)",
      );
    });

/** The prefix of every Redis key and channel: letters, digits and _ . : - (1 to 64). */
const redisPrefix = () =>
  z
    .string()
    .optional()
    .transform((raw, ctx): string => {
      if (unset(raw)) return "refinery";
      if (/^[A-Za-z0-9_.:-]{1,64}$/.test(raw.trim())) return raw.trim();
      return issue(
        ctx,
        `the prefix must be 1 to 64 letters, digits, _ . : or -, not ${JSON.stringify(raw)}`,
        "set it to a name such as refinery-prod",
      );
    });

export const EnvSchema = z.object({
  PORT: int(PORT_SPEC),
  HOST: text(),
  LOG_LEVEL: oneOf(
    ["debug", "info", "warn", "error"],
    "info",
    "set it to debug, info, warn or error",
  ),
  OPENAI_API_KEY: text(),
  OPENAI_BASE_URL: text(),
  REFINERY_DB: text(),
  REFINERY_CONFIG: text(),
  REFINERY_GRAPHS_DIR: text(),
  REFINERY_NODE_KINDS: text(),
  REFINERY_PROVIDER_MODULE: text(),
  REFINERY_MODEL: text(),
  REFINERY_MODEL_ENDPOINTS: text(),
  REFINERY_EMBEDDINGS_MODEL: text(),
  REFINERY_MODEL_TIMEOUT_MS: int({
    fallback: undefined,
    min: 100,
    max: 600_000,
    what: "the time limit of one model attempt in ms",
    example: "a whole number of milliseconds from 100 to 600000 such as 60000, or unset it",
  }),
  REFINERY_MODEL_DEADLINE_MS: int({
    fallback: undefined,
    min: 0,
    max: 3_600_000,
    what: "the time limit of one model call (all attempts) in ms",
    example:
      "a whole number of milliseconds from 0 to 3600000 such as 120000 (0: none), or unset it",
  }),
  REFINERY_MEMORY: oneOf(
    ["on", "off", "true", "false", "1", "0"],
    "on",
    "set it to on or off",
  ).transform((v) => !["off", "false", "0"].includes(v)),
  REFINERY_STORE_URL: text().transform((raw, ctx) => {
    if (raw !== undefined && !/^postgres(ql)?:\/\//.test(raw)) {
      return issue(
        ctx,
        "REFINERY_STORE_URL is not a Postgres URL",
        "use postgres://user@host:5432/db, or unset it to keep lessons in the SQLite file",
      );
    }
    return raw;
  }),
  REFINERY_DATABASE_URL: text().transform((raw, ctx) => {
    if (raw !== undefined && !/^postgres(ql)?:\/\//.test(raw)) {
      return issue(
        ctx,
        "REFINERY_DATABASE_URL is not a Postgres URL",
        "use postgres://user:password@host:5432/database, or unset it to keep all state in the SQLite file (REFINERY_DB)",
      );
    }
    return raw;
  }),
  REFINERY_DATABASE_SCHEMA: text().transform((raw, ctx) => {
    if (raw !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(raw)) {
      return issue(
        ctx,
        `REFINERY_DATABASE_SCHEMA "${raw}" is not a schema name`,
        "use letters, digits and underscores (at most 63), starting with a letter or underscore; default public",
      );
    }
    return raw;
  }),
  REFINERY_PACK_CHECKPOINTS: oneOf(
    ["on", "off", "true", "false", "1", "0"],
    "on",
    "set it to on or off (off while processes of a version before packing still run)",
  ).transform((v) => !["off", "false", "0"].includes(v)),
  REFINERY_API_KEYS: text(),
  REFINERY_ALLOW_ANONYMOUS: flag(
    "set it to 1 to serve without authentication on a non-loopback address, or unset it",
  ),
  REFINERY_DEV: flag("set it to 1 to serve the dev routes (POST /internal/truncate), or unset it"),
  REFINERY_ALLOWED_HOSTS: text(),
  REFINERY_REDIS_URL: redisUrl(),
  REFINERY_REDIS_PREFIX: redisPrefix(),
  REFINERY_CORS_ORIGINS: text(),
  REFINERY_OUTBOUND_ALLOW: text(),
  REFINERY_RATE_LIMIT: int({
    fallback: undefined,
    min: 0,
    max: 100_000_000,
    what: "the request rate limit (requests per minute per caller, 0: none)",
    example: "a number such as 6000, or 0 for no limit",
  }),
  REFINERY_TENANT_MAX_RUNS: int({
    fallback: undefined,
    min: 0,
    max: 10_000_000,
    what: "the runs in flight per tenant (0: no cap)",
    example: "a number such as 200, or 0 for no cap",
  }),
  REFINERY_TENANT_MAX_CRONS: int({
    fallback: ENV_DEFAULTS.REFINERY_TENANT_MAX_CRONS,
    min: 0,
    max: 1_000_000,
    what: "the crons (scheduled runs) per tenant (0: no cap)",
    example: "a number such as 100, or 0 for no cap",
  }),
  REFINERY_MAX_RECURSION_LIMIT: int({
    fallback: ENV_DEFAULTS.REFINERY_MAX_RECURSION_LIMIT,
    min: 1,
    max: 10_000,
    what: "the largest recursion_limit a run may ask for",
    example: "a number such as 1000",
  }),
  REFINERY_BODY_LIMIT: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (unset(raw)) return ENV_DEFAULTS.REFINERY_BODY_LIMIT as string;
      if (!/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i.test(raw.trim())) {
        return issue(
          ctx,
          `the request body limit must be a size such as 1mb, not ${JSON.stringify(raw)}`,
          "set it to a number of bytes or a size such as 512kb or 2mb",
        );
      }
      return raw.trim();
    }),
  REFINERY_WORKERS: int({
    fallback: ENV_DEFAULTS.REFINERY_WORKERS,
    min: 1,
    max: 100_000,
    what: "the number of runs executing at once",
    example: "a number such as 64",
  }),
  REFINERY_RUN_THREADS: z
    .string()
    .optional()
    .transform((raw, ctx): number | "auto" => {
      if (unset(raw) || raw.trim() === "auto") return "auto";
      const n = Number(raw.trim());
      if (!Number.isInteger(n) || n < 0 || n > 64) {
        return issue(
          ctx,
          `the number of run threads must be "auto" or 0-64, not ${JSON.stringify(raw)}`,
          'use "auto", 0 (graphs run in the server thread) or a thread count such as 2',
        );
      }
      return n;
    }),
  REFINERY_STREAM_RETAIN_RUNS: int({
    fallback: ENV_DEFAULTS.REFINERY_STREAM_RETAIN_RUNS,
    min: 0,
    max: 1_000_000,
    what: "the number of finished runs whose events are kept",
    example: "a number such as 500",
  }),
  REFINERY_RUN_THREAD_HEAP_MB: z
    .string()
    .optional()
    .transform((raw, ctx): number => {
      if (unset(raw)) return ENV_DEFAULTS.REFINERY_RUN_THREAD_HEAP_MB;
      const n = Number(raw.trim());
      if (!Number.isInteger(n) || (n !== 0 && (n < 64 || n > 65_536))) {
        return issue(
          ctx,
          `the heap limit of a run thread must be 0 or 64-65536 MiB, not ${JSON.stringify(raw)}`,
          "use a number of MiB such as 512, or 0 for V8's default limit",
        );
      }
      return n;
    }),
  REFINERY_KEEPALIVE_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_KEEPALIVE_MS,
    min: 100,
    max: 600_000,
    what: "the keep-alive interval in ms",
    example: "a number of milliseconds such as 15000",
  }),
  REFINERY_STEP_TIMEOUT_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_STEP_TIMEOUT_MS,
    min: 0,
    max: 2_147_483_647,
    what: "the step time limit in ms",
    example: "a number of milliseconds such as 300000, or 0 for no limit",
  }),
  REFINERY_SCHEMA_TIMEOUT_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_SCHEMA_TIMEOUT_MS,
    min: 100,
    max: 600_000,
    what: "the schema extraction time limit in ms",
    example: "a number of milliseconds such as 30000",
  }),
  REFINERY_RUN_TIMEOUT_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_RUN_TIMEOUT_MS,
    min: 0,
    max: 2_147_483_647,
    what: "the run time limit in ms",
    example: "a number of milliseconds such as 1800000, or 0 for no limit",
  }),
  REFINERY_SHUTDOWN_GRACE_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_SHUTDOWN_GRACE_MS,
    min: 0,
    max: 3_600_000,
    what: "the shutdown grace in ms",
    example: "a number of milliseconds such as 10000",
  }),
  REFINERY_APPROVAL_POLL_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_APPROVAL_POLL_MS,
    min: 10,
    max: 3_600_000,
    what: "how often approval deadlines are checked, in ms",
    example: "a number of milliseconds such as 1000",
  }),
  REFINERY_THREAD_SWEEP_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_THREAD_SWEEP_MS,
    min: 100,
    max: 86_400_000,
    what: "how often threads whose TTL ran out are deleted, in ms",
    example: "a number of milliseconds such as 60000",
  }),
  REFINERY_RUN_LEASE_MS: int({
    fallback: ENV_DEFAULTS.REFINERY_RUN_LEASE_MS,
    min: 300,
    max: 600_000,
    what: "how long a run stays leased to its worker without a heartbeat before another worker takes it over, in ms",
    example: "a number of milliseconds such as 30000",
  }),
  REFINERY_MAX_CHECKPOINT_BYTES: int({
    fallback: ENV_DEFAULTS.REFINERY_MAX_CHECKPOINT_BYTES,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    what: "the largest checkpoint in bytes (0: no limit)",
    example: `a number of bytes such as ${ENV_DEFAULTS.REFINERY_MAX_CHECKPOINT_BYTES}, or 0 for no limit`,
  }),
  REFINERY_MAX_THREAD_BYTES: int({
    fallback: ENV_DEFAULTS.REFINERY_MAX_THREAD_BYTES,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    what: "the most bytes of state one thread holds (0: no limit)",
    example: `a number of bytes such as ${ENV_DEFAULTS.REFINERY_MAX_THREAD_BYTES}, or 0 for no limit`,
  }),
  REFINERY_EVAL_THREADS: int({
    fallback: ENV_DEFAULTS.REFINERY_EVAL_THREADS,
    min: 0,
    max: 16,
    what: "the number of evaluation threads",
    example:
      "1 (the default), a small thread count such as 2, or 0 to run evaluations in the server thread",
  }),
  REFINERY_EVAL_MAX_RUNS: int({
    fallback: ENV_DEFAULTS.REFINERY_EVAL_MAX_RUNS,
    min: 1,
    max: 10_000_000,
    what: "the number of graph runs one evaluation job may ask for",
    example: `a number such as ${ENV_DEFAULTS.REFINERY_EVAL_MAX_RUNS}`,
  }),
  REFINERY_EVAL_MAX_JOBS: int({
    fallback: ENV_DEFAULTS.REFINERY_EVAL_MAX_JOBS,
    min: 1,
    max: 1000,
    what: "the number of evaluation jobs running at once per caller",
    example: `a number such as ${ENV_DEFAULTS.REFINERY_EVAL_MAX_JOBS}`,
  }),
});

export type EnvSettings = z.output<typeof EnvSchema>;
export type EnvName = keyof EnvSettings;
export const ENV_NAMES = Object.keys(EnvSchema.shape) as EnvName[];

/**
 * Reads every setting from `env`; the first bad one is an `invalid_config` error naming the
 * variable and the fix (`field` is the variable's name).
 */
export function readEnv(env: Record<string, string | undefined> = process.env): EnvSettings {
  const picked: Record<string, string | undefined> = {};
  for (const name of ENV_NAMES) picked[name] = env[name];
  const result = EnvSchema.safeParse(picked);
  if (result.success) return result.data;
  const first = result.error.issues[0]!;
  const name = String(first.path[0]);
  const fix =
    ((first as { params?: Record<string, unknown> }).params?.[FIX] as string | undefined) ??
    "unset it or correct its value";
  throw new RefineryError("invalid_config", first.message, {
    field: name,
    fix: `${fix.replace(/^set it/, `set ${name}`)}`,
  });
}

/**
 * The REFINERY_* variables in `env` that Refinery does not read, each as a one-line warning
 * naming the closest setting it knows (a misspelt setting is otherwise silently ignored).
 */
export function unknownEnvWarnings(
  env: Record<string, string | undefined> = process.env,
): string[] {
  const known = ENV_NAMES.filter((n) => n.startsWith("REFINERY_"));
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("REFINERY_") || (known as string[]).includes(name)) continue;
    // Compared without the shared prefix, which would make every name look close.
    const tail = closest(
      name.slice("REFINERY_".length),
      known.map((n) => n.slice("REFINERY_".length)),
    );
    const near = tail && `REFINERY_${tail}`;
    out.push(
      `${name} is not a Refinery setting and is ignored` +
        (near ? `; did you mean ${near}?` : `; the settings are listed in the README`),
    );
  }
  return out;
}
