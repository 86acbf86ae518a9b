// Every Postgres pool Refinery opens for its state: a bounded connect wait, and a server-side
// limit on a transaction left open by a client that stopped sending (a process frozen, swapped
// out or stopped in a debugger between BEGIN and COMMIT). Without it such a session keeps its row
// locks until the frozen process resumes, and every other process that touches those rows, such
// as a worker taking over the frozen one's runs, waits on them forever. With it, Postgres ends
// the session after IDLE_IN_TRANSACTION_MS and its locks go with it.
import { createHash } from "node:crypto";
import pg from "pg";
import { markStorageFailure } from "../transient.ts";

/** Longest a Refinery session may sit idle inside a transaction (ours last milliseconds). */
export const IDLE_IN_TRANSACTION_MS = 10_000;

type Callback = (err: unknown, ...rest: unknown[]) => void;

const marking =
  (callback: Callback): Callback =>
  (err, ...rest) =>
    callback(err ? markStorageFailure(err) : err, ...rest);

/**
 * Calls `call` with `args`, its callback (a function as the last argument) or its promise marking
 * a failure as the storage's own (core/storage/transient.ts), so that a run's step can tell the
 * database going away from the same socket error in a graph's own code.
 */
function marked(call: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  const last = args.length - 1;
  if (typeof args[last] === "function") args[last] = marking(args[last] as Callback);
  const result = call(...args);
  return result instanceof Promise
    ? result.catch((err: unknown) => {
        throw markStorageFailure(err);
      })
    : result;
}

/** A pool client whose query failures carry the storage mark. */
class StorageClient extends pg.Client {
  // pg's overloads (promise, callback, submittable) all pass through `marked`.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: any[]): any {
    return marked((...a) => Reflect.apply(super.query, this, a), args);
  }
}

/** A pool whose connect failures (refused, timed out) carry the storage mark, as its clients' do. */
class StoragePool extends pg.Pool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override connect(...args: any[]): any {
    return marked((...a) => Reflect.apply(super.connect, this, a), args);
  }
}

export function openPostgresPool(
  url: string,
  max: number,
  idleInTransactionMs = IDLE_IN_TRANSACTION_MS,
): pg.Pool {
  const pool = new StoragePool({
    Client: StorageClient,
    connectionString: url,
    connectionTimeoutMillis: 5000,
    idle_in_transaction_session_timeout: idleInTransactionMs,
    max,
  });
  // An idle client's connection can drop (a Postgres restart); without a listener that crashes.
  pool.on("error", () => {});
  // So can a checked-out one between its queries (inside a transaction, a cursor's pages): the
  // pool listens only while a client is idle, so each client gets a listener of its own. The
  // query waiting on it fails anyway, which is how the caller hears of it.
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/**
 * Runs `work` on one connection of `pool` between BEGIN and COMMIT; on a failure it rolls back
 * and rethrows. A connection whose ROLLBACK failed too is dropped from the pool, not reused.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

const names = new Map<string, string>();

/**
 * A query as a named (prepared) statement: Postgres parses and plans `text` once per connection
 * instead of at every call. For the statements every run sends many times (checkpoints, their
 * writes, the model attempt journal, the feedback inbox); the name is derived from the text, so
 * the same text always has the same name and different texts never share one.
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = names.get(text);
  if (name === undefined) {
    name = `rfq_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`;
    if (names.size >= 1024) names.clear();
    names.set(text, name);
  }
  return { name, text, values };
}
