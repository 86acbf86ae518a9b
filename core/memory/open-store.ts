// Opens the LangGraph store for the lessons memory: Postgres when a URL is given, otherwise SQLite
// in the checkpoints' database (a shared handle, or a file path). Failures become RefineryErrors
// that say what is wrong and how to fix it.
import type { BaseStore } from "@langchain/langgraph-checkpoint";
import type Database from "better-sqlite3";
import type pg from "pg";
import { RefineryError } from "../errors.ts";
import { SqliteStore } from "./sqlite-store.ts";

export interface OpenStoreOptions {
  /** A SQLite file (opened, and closed by `close()`). */
  dbPath?: string;
  /** An open SQLite database, e.g. the checkpointer's; `close()` leaves it open. */
  db?: Database.Database;
  /** postgres://user:password@host:port/database; takes precedence over SQLite. */
  postgresUrl?: string;
  /** An open Postgres pool (the persistence backend's); `close()` leaves it open. */
  postgresPool?: pg.Pool;
  /** Postgres schema for the store's table, created if missing (default "public"). */
  schema?: string;
}

export interface OpenedStore {
  store: BaseStore;
  close(): Promise<void>;
  kind: "sqlite" | "postgres";
}

const URL_FIELD = "REFINERY_STORE_URL";

export async function openStore(opts: OpenStoreOptions): Promise<OpenedStore> {
  if (opts.postgresUrl !== undefined) return openPostgres(opts.postgresUrl, opts.schema);
  if (opts.postgresPool !== undefined) {
    const { PostgresStore } = await import("./postgres-store.ts");
    const store = new PostgresStore({ connection: opts.postgresPool, schema: opts.schema });
    await store.setup();
    return { store, kind: "postgres", close: () => store.stop() };
  }
  if (opts.db === undefined && opts.dbPath === undefined) {
    throw new RefineryError("invalid_config", "no store configured", {
      fix: "pass a SQLite database (db or dbPath) or set REFINERY_STORE_URL to a Postgres URL",
    });
  }
  const store = new SqliteStore(opts.db ?? opts.dbPath!);
  return { store, kind: "sqlite", close: async () => store.stop() };
}

async function openPostgres(url: string, schema: string | undefined): Promise<OpenedStore> {
  const where = describeUrl(url);
  // Loaded on demand: the embedded default (and every CLI start) need not load pg.
  const { PostgresStore } = await import("./postgres-store.ts");
  const store = new PostgresStore({ connection: url, schema });
  try {
    await store.setup();
  } catch (err) {
    await store.stop().catch(() => {});
    throw connectError(err, where, schema ?? "public");
  }
  return { store, kind: "postgres", close: () => store.stop() };
}

/** host:port/database of a Postgres URL, without credentials; refuses what is not one. */
function describeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badUrl("is not a URL");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw badUrl(`has protocol ${parsed.protocol} instead of postgres:`);
  }
  if (!parsed.hostname && !parsed.searchParams.has("host")) throw badUrl("has no host");
  const host = parsed.hostname || parsed.searchParams.get("host");
  return `${host}:${parsed.port || "5432"}${parsed.pathname || "/"}`;
}

function badUrl(problem: string): RefineryError {
  return new RefineryError("invalid_config", `the Postgres store URL ${problem}`, {
    field: URL_FIELD,
    fix: "use postgres://user:password@host:5432/database",
  });
}

function connectError(err: unknown, where: string, schema: string): RefineryError {
  const cause = err instanceof RefineryError && err.cause !== undefined ? err.cause : err;
  const code = (cause as { code?: string }).code ?? "";
  const detail = (cause as Error).message;
  const make = (message: string, fix: string, retryable: boolean) =>
    new RefineryError("storage_error", message, { field: URL_FIELD, fix, retryable, cause });
  if (["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH"].includes(code)) {
    return make(
      `cannot reach Postgres at ${where} (${code})`,
      "start Postgres or correct the host and port in REFINERY_STORE_URL",
      true,
    );
  }
  if (/timeout/i.test(detail) && code === "") {
    return make(
      `cannot reach Postgres at ${where} (connection timed out)`,
      "check that Postgres is up and reachable from this machine",
      true,
    );
  }
  if (code === "28P01" || code === "28000") {
    return make(
      `Postgres at ${where} refused the credentials (${detail})`,
      "correct the user and password in REFINERY_STORE_URL",
      false,
    );
  }
  if (code === "3D000") {
    return make(
      `Postgres database at ${where} does not exist`,
      "create the database or name an existing one in REFINERY_STORE_URL",
      false,
    );
  }
  if (code === "42501") {
    return make(
      `no permission to create the store's table in schema "${schema}" at ${where} (${detail})`,
      "grant CREATE on the schema (or database) to the store's user, or choose another schema",
      false,
    );
  }
  return make(
    `cannot open the Postgres store at ${where} (${detail})`,
    "check REFINERY_STORE_URL and that Postgres is up",
    true,
  );
}
