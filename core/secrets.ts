// Secrets are write-only: webhook secrets, verifier headers and key-like fields are stored as
// given (runs need them) but every response, stream event, export and log line shows "***".
// A client that sends "***" back where a secret was (PATCH of an assistant it read) keeps it.

export const REDACTED = "***";

/** Field names whose value is a credential wherever they appear in a config. */
const SECRET_KEY =
  /^(secret|password|passwd|passphrase|token|api[-_]?key|apikey|x[-_]api[-_]key|access[-_]?token|refresh[-_]?token|id[-_]?token|client[-_]?secret|private[-_]?key|authorization|cookie|credentials?|webhook[-_]?secret|signing[-_]?secret)$/i;

/** Objects under these names are header maps: every value may be a credential. */
const HEADER_MAPS = /^(headers|http[-_]?headers)$/i;

const MAX_DEPTH = 64;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * A copy of `value` with every secret replaced by "***" (the same object when it holds none, so
 * the common case costs one walk and no allocation).
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, 0) as T;
}

function redact(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = redact(value[i], depth + 1);
      if (next !== value[i]) (out ??= value.slice())[i] = next;
    }
    return out ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // class instances: not config
  let out: Record<string, unknown> | undefined;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    let next: unknown;
    if (isSecretKey(key)) next = hidden(v);
    else if (HEADER_MAPS.test(key) && v && typeof v === "object" && !Array.isArray(v))
      next = mapValues(v as Record<string, unknown>, hidden);
    else next = redact(v, depth + 1);
    if (next !== v) (out ??= { ...(value as Record<string, unknown>) })[key] = next;
  }
  return out ?? value;
}

function hidden(v: unknown): unknown {
  return v === null || v === undefined || v === "" || v === REDACTED ? v : REDACTED;
}

function mapValues(
  obj: Record<string, unknown>,
  f: (v: unknown) => unknown,
): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(obj)) {
    const next = f(v);
    if (next !== v) (out ??= { ...obj })[k] = next;
  }
  return out ?? obj;
}

/**
 * `next` with every "***" that stands where `previous` held a value put back to that value: a
 * client that read a redacted config and sends it back unchanged does not erase its secrets.
 */
export function restoreSecrets<T>(next: T, previous: unknown): T {
  return restore(next, previous, 0) as T;
}

function restore(next: unknown, previous: unknown, depth: number): unknown {
  if (next === REDACTED) return previous !== undefined && previous !== null ? previous : next;
  if (next === null || typeof next !== "object" || depth > MAX_DEPTH) return next;
  if (previous === null || typeof previous !== "object") return next;
  if (Array.isArray(next)) {
    const prev = Array.isArray(previous) ? previous : [];
    return next.map((v, i) => restore(v, prev[i], depth + 1));
  }
  const prev = previous as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(next as Record<string, unknown>).map(([k, v]) => [
      k,
      restore(v, prev[k], depth + 1),
    ]),
  );
}
