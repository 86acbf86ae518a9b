// Failures that say the database did not answer, not that a request was wrong. Kept apart from
// the Postgres storage so that code on every backend (server/run-runner.ts) can ask without
// loading the pg driver.
import { isRefineryError } from "../errors.ts";

/** Socket errors that pass when the database is back (Node's codes). */
export const NETWORK_ERRORS: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

// A registered symbol: the bundle in dist/ may hold this module more than once.
const FROM_STORAGE = Symbol.for("refinery.storage-failure");

/**
 * Marks `err` as thrown by a connection of Refinery's own storage (core/storage/postgres/pool.ts
 * marks every failure of its pools' queries and connects), and returns it. Only a marked error
 * can count as the database going away: the same socket error from a graph's own HTTP call or
 * database client is the graph's failure.
 */
export function markStorageFailure<E>(err: E): E {
  if (typeof err === "object" && err !== null && !Object.isFrozen(err)) {
    Object.defineProperty(err, FROM_STORAGE, { value: true, configurable: true });
  }
  return err;
}

/**
 * True for a retryable storage_error, or an error of Refinery's own Postgres connections (marked
 * by markStorageFailure) thrown where nothing wrapped it (the checkpoint saver's queries): a
 * connection exception (SQLSTATE class 08), the server shutting down or starting (57P), a socket
 * error, or pg's "Connection terminated" and connect timeout (no code). SQLite's errors
 * (SQLITE_*) are none of these. A run that meets one in a step is continued from its last
 * checkpoint, not failed; any other error of a step, whatever its code, fails the run.
 */
export function isTransientStorageFailure(err: unknown): boolean {
  const marked =
    isRefineryError(err) || (err as { [FROM_STORAGE]?: true })?.[FROM_STORAGE] === true;
  return marked && looksLikeConnectionFailure(err);
}

/**
 * The same rule without the storage mark: a retryable storage_error, or an error whose code or
 * message says a connection failed, wherever it came from. For a run thread's start, which opens
 * nothing but Refinery's own storage and modules (server/run-thread.ts); a step's errors need the
 * mark (isTransientStorageFailure), since a node's own calls fail the same way.
 */
export function looksLikeConnectionFailure(err: unknown): boolean {
  if (isRefineryError(err)) return err.code === "storage_error" && err.retryable;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && code !== "") {
    return code.startsWith("08") || code.startsWith("57P") || NETWORK_ERRORS.has(code);
  }
  return /^Connection terminated|^timeout exceeded when trying to connect/.test(err.message);
}
