// One error type for everything a user or client can get wrong, with a closed set of codes.
// Each code says whether retrying can help and which HTTP status it maps to (the only table).

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

/** Turns a zod error into a RefineryError naming the first offending field. */
export function fromZodError(
  error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> },
  prefix = "",
  code: ErrorCode = "invalid_input",
): RefineryError {
  const issue = error.issues[0];
  const path = issue ? formatPath(issue.path) : "";
  const field = [prefix, path].filter(Boolean).join(path.startsWith("[") ? "" : ".");
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : "";
  return new RefineryError(code, `${issue?.message ?? "invalid value"}${more}`, {
    field: field || undefined,
  });
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}
