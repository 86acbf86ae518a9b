// Every Postgres pool Refinery opens for its state: a bounded connect wait, and a server-side
// limit on a transaction left open by a client that stopped sending (a process frozen, swapped
// out or stopped in a debugger between BEGIN and COMMIT). Without it such a session keeps its row
// locks until the frozen process resumes, and every other process that touches those rows, such
// as a worker taking over the frozen one's runs, waits on them forever. With it, Postgres ends
// the session after IDLE_IN_TRANSACTION_MS and its locks go with it.
import pg from "pg";

/** Longest a Refinery session may sit idle inside a transaction (ours last milliseconds). */
export const IDLE_IN_TRANSACTION_MS = 10_000;

export function openPostgresPool(
  url: string,
  max: number,
  idleInTransactionMs = IDLE_IN_TRANSACTION_MS,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    connectionTimeoutMillis: 5000,
    idle_in_transaction_session_timeout: idleInTransactionMs,
    max,
  });
  // An idle client's connection can drop (a Postgres restart); without a listener that crashes.
  pool.on("error", () => {});
  return pool;
}
