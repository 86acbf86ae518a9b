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

/**
 * True for a retryable storage_error, or an error of the pg driver or its socket thrown where
 * nothing wrapped it (the checkpoint saver's and the store's own queries): a connection
 * exception (SQLSTATE class 08), the server shutting down or starting (57P), a socket error, or
 * pg's "Connection terminated" (no code). SQLite's errors (SQLITE_*) are none of these. A run
 * that meets one in a step is continued from its last checkpoint, not failed.
 */
export function isTransientStorageFailure(err: unknown): boolean {
  if (isRefineryError(err)) return err.code === "storage_error" && err.retryable;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && code !== "") {
    return code.startsWith("08") || code.startsWith("57P") || NETWORK_ERRORS.has(code);
  }
  return /^Connection terminated|^timeout exceeded when trying to connect/.test(err.message);
}
