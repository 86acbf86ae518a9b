// One error type for everything a user or client can get wrong, with a closed set of codes.
// Each code says whether retrying can help and which HTTP status it maps to (the only table).
import { suggestion } from "./suggest.ts";

export const ERROR_CODES = {
  invalid_input: { status: 422, retryable: false },
  invalid_config: { status: 422, retryable: false },
  bad_request: { status: 400, retryable: false },
  /** No credentials, or credentials the server does not accept. */
  unauthorized: { status: 401, retryable: false },
  /** Authenticated, but the caller's role or auth handler does not allow the operation. */
  forbidden: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  conflict: { status: 409, retryable: false },
  busy: { status: 409, retryable: true },
  /** A run was refused because its thread already has one in flight (multitask_strategy reject). */
  thread_busy: { status: 422, retryable: true },
  payload_too_large: { status: 413, retryable: false },
  /** Too many requests or runs for the caller right now; `retryAfterMs` says when to retry. */
  rate_limited: { status: 429, retryable: true },
  model_unavailable: { status: 502, retryable: true },
  model_error: { status: 502, retryable: false },
  verifier_unavailable: { status: 502, retryable: true },
  storage_error: { status: 500, retryable: false },
  cancelled: { status: 409, retryable: false },
  internal: { status: 500, retryable: false },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RefineryErrorOptions {
  /** Dotted path of the offending field, e.g. `verifiers[1].pattern`. */
  field?: string;
  /** What the user should do about it. */
  fix?: string;
  cause?: unknown;
  retryable?: boolean;
  /** When a retry may succeed (rate limits); HTTP sends it as Retry-After. */
  retryAfterMs?: number;
}

export class RefineryError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly fix?: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options: RefineryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RefineryError";
    this.code = code;
    this.field = options.field;
    this.fix = options.fix;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  get status(): number {
    // The database not answering (a storage error that may pass): 503, as for a service down.
    if (this.code === "storage_error" && this.retryable) return 503;
    return ERROR_CODES[this.code].status;
  }

  /** One line for a terminal: what was wrong, where, and how to fix it. */
  toLine(): string {
    const where = this.field ? `${this.field}: ` : "";
    const fix = this.fix ? ` Fix: ${this.fix}` : "";
    return `${where}${this.message}${fix}`;
  }

  toJSON(): Record<string, unknown> {
    return {
      error: this.code,
      message: this.toLine(),
      ...(this.field ? { field: this.field } : {}),
      retryable: this.retryable,
    };
  }
}

export function isRefineryError(value: unknown): value is RefineryError {
  return value instanceof RefineryError;
}

/**
 * Turns a zod error into a RefineryError naming the first offending field. With the `schema`
 * that failed, a misspelt field is named itself, with the closest valid name as the fix.
 */
export function fromZodError(
  error: {
    issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string }>;
  },
  prefix = "",
  code: ErrorCode = "invalid_input",
  schema?: unknown,
): RefineryError {
  const issue = error.issues[0];
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : "";
  const unknownKey =
    issue?.code === "unrecognized_keys"
      ? (issue as unknown as { keys?: string[] }).keys?.[0]
      : undefined;
  if (issue && unknownKey !== undefined) {
    const at = [...issue.path, unknownKey];
    const known = schema ? keysAt(schema, issue.path) : undefined;
    return new RefineryError(code, `unknown field "${unknownKey}"${more}`, {
      field: joinField(prefix, formatPath(at)),
      ...(known ? { fix: suggestion(unknownKey, known) } : {}),
    });
  }
  const path = issue ? formatPath(issue.path) : "";
  // A bad key of a record: zod says "Invalid key in record"; the key's own rule says why.
  const keyIssue =
    issue?.code === "invalid_key"
      ? (issue as unknown as { issues?: { message?: string }[] }).issues?.[0]?.message
      : undefined;
  if (keyIssue) {
    return new RefineryError(code, `invalid key: ${keyIssue}${more}`, {
      field: joinField(prefix, path) || undefined,
    });
  }
  return new RefineryError(code, `${issue?.message ?? "invalid value"}${more}`, {
    field: joinField(prefix, path) || undefined,
  });
}

function joinField(prefix: string, path: string): string {
  return [prefix, path].filter(Boolean).join(path.startsWith("[") ? "" : ".");
}

interface ZodLike {
  _zod?: { def?: Record<string, unknown> };
  shape?: Record<string, unknown>;
}

/** The field names of the object schema at `path` inside `schema` (optional etc. unwrapped). */
function keysAt(schema: unknown, path: ReadonlyArray<PropertyKey>): string[] | undefined {
  let s = unwrap(schema);
  for (const p of path) {
    const def = (s as ZodLike | undefined)?._zod?.def;
    if (!def) return undefined;
    if (def.type === "object") s = unwrap((s as ZodLike).shape?.[String(p)]);
    else if (def.type === "array") s = unwrap(def.element);
    else if (def.type === "record") s = unwrap(def.valueType);
    else return undefined;
  }
  const shape =
    (s as ZodLike | undefined)?._zod?.def?.type === "object" ? (s as ZodLike).shape : undefined;
  return shape ? Object.keys(shape) : undefined;
}

function unwrap(schema: unknown): unknown {
  let s = schema as ZodLike | undefined;
  for (let i = 0; i < 10 && s?._zod?.def; i++) {
    const def = s._zod.def;
    if (
      ["optional", "nullable", "default", "readonly", "catch", "nonoptional"].includes(
        String(def.type),
      )
    )
      s = def.innerType as ZodLike;
    else if (def.type === "pipe") s = def.in as ZodLike;
    else break;
  }
  return s;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}
