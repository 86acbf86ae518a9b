// Storage bench (npm run bench:storage): what one default refine run (3 iterations, the server
// bench's workload, bench/server-graph.ts) leaves in the server's SQLite file. Starts our server as
// a child process (startServer via bench/server-child.ts, the bench model), drives BENCH_STORAGE_RUNS
// runs (default 2,000, the size of the loads issue 20 measured with; at 300 the tables' first pages
// add about 2 KB a run on Postgres) through the official SDK with runs.wait at BENCH_STORAGE_CONCURRENCY (16),
// each on a fresh thread, stops the server, then reads the closed file: its size, the WAL left
// beside it, the free pages, and dbstat's bytes per table and per index, each divided by the runs.
// BENCH_STORAGE_DB=<file> keeps the file. BENCH_STORAGE_POSTGRES=<url>: the server stores in a new
// schema of that database instead, and the bench prints pg_total_relation_size per table (heap,
// TOAST and indexes) per run, and the stored bytes of each column of the five largest tables
// (pg_column_size: after compression, before TOAST's chunking), then drops the schema
// (BENCH_STORAGE_KEEP=1 keeps it, to look into it afterwards); BENCH_STORAGE_STEADY=<n> first
// measures n more batches of runs with a plain VACUUM after each, as autovacuum leaves a busy
// database. The issue 20 target: at most 8,000 bytes per run for the whole file.
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import pg from "pg";
import { RUN_OPTIONS, TASK } from "./server-graph.ts";
import { startOurs } from "./server-procs.ts";

const RUNS = Number(process.env.BENCH_STORAGE_RUNS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_STORAGE_CONCURRENCY ?? 16);
const TARGET_BYTES = 8000;

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);

export interface StorageBreakdown {
  fileBytes: number;
  walBytes: number;
  freeBytes: number;
  pageSize: number;
  /** dbstat bytes (pages) per table or index, with the table an index belongs to. */
  objects: { name: string; table: string; bytes: number; payload: number }[];
}

/** Reads a closed SQLite file: its size, its WAL's, free pages and dbstat per object. */
export function sqliteBreakdown(path: string): StorageBreakdown {
  const walBytes = size(`${path}-wal`);
  const fileBytes = size(path);
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    const free = db.pragma("freelist_count", { simple: true }) as number;
    const objects = db
      .prepare(
        `SELECT s.name AS name, coalesce(m.tbl_name, s.name) AS "table",
                sum(s.pgsize) AS bytes, sum(s.payload) AS payload
         FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name
         GROUP BY s.name ORDER BY bytes DESC`,
      )
      .all() as StorageBreakdown["objects"];
    return { fileBytes, walBytes, freeBytes: free * pageSize, pageSize, objects };
  } finally {
    db.close();
  }
}

/** Prints the breakdown per run; returns the file's bytes per run. */
export function printBreakdown(b: StorageBreakdown, runs: number): number {
  const per = (n: number) => (n / runs).toFixed(0).padStart(7);
  const byTable = new Map<string, number>();
  for (const o of b.objects) byTable.set(o.table, (byTable.get(o.table) ?? 0) + o.bytes);
  console.log(`\nbytes per run over ${runs} runs (pages; payload = bytes of the rows themselves)`);
  console.log(`${"object".padEnd(44)} | table/index | bytes/run | payload/run`);
  for (const o of b.objects) {
    if (o.bytes === 0) continue;
    const kind = o.name === o.table ? "table" : "index";
    console.log(
      `${o.name.padEnd(44)} | ${kind.padEnd(11)} | ${per(o.bytes)}   | ${per(o.payload)}`,
    );
  }
  console.log(`\nper table, indexes included:`);
  for (const [t, bytes] of [...byTable].sort((a, b) => b[1] - a[1])) {
    if (bytes > 0) console.log(`${t.padEnd(44)} | ${per(bytes)}`);
  }
  const perRun = b.fileBytes / runs;
  console.log(
    `\nfile ${b.fileBytes} bytes (${per(b.fileBytes).trim()} per run), of which free pages ` +
      `${b.freeBytes} (${per(b.freeBytes).trim()} per run); WAL left beside it: ${b.walBytes} bytes; ` +
      `page size ${b.pageSize}`,
  );
  console.log(
    `target: at most ${TARGET_BYTES} bytes per run for the whole file: ` +
      `${perRun <= TARGET_BYTES ? "met" : "MISSED"} (${perRun.toFixed(0)})`,
  );
  return perRun;
}

/** Bytes per table of a Postgres schema (heap, TOAST and indexes), largest first. */
export async function postgresBreakdown(
  url: string,
  schema: string,
): Promise<{ table: string; bytes: number; heap: number; indexes: number }[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Statistics and the visibility map are what VACUUM leaves; sizes are of the pages as stored.
    const { rows } = await client.query<{
      table: string;
      bytes: string;
      heap: string;
      indexes: string;
    }>(
      `SELECT c.relname AS table, pg_total_relation_size(c.oid) AS bytes,
         pg_relation_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 2 DESC`,
      [schema],
    );
    return rows.map((r) => ({
      table: r.table,
      bytes: Number(r.bytes),
      heap: Number(r.heap),
      indexes: Number(r.indexes),
    }));
  } finally {
    await client.end();
  }
}

/**
 * Bytes per run of each column of `tables` (pg_column_size: as stored, compressed or not, before
 * TOAST splits it), and the heap row count: where a table's bytes go.
 */
async function postgresColumns(
  url: string,
  schema: string,
  tables: string[],
  runs: number,
): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const table of tables) {
      const { rows: cols } = await client.query<{ name: string }>(
        `SELECT column_name AS name FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
        [schema, table],
      );
      const q = `"${schema}"."${table}"`;
      const sums = cols.map((c) => `COALESCE(SUM(pg_column_size("${c.name}")), 0)::bigint`);
      const { rows } = await client.query<Record<string, string>>(
        `SELECT COUNT(*)::bigint AS n, ${sums.map((s, i) => `${s} AS c${i}`).join(", ")} FROM ${q}`,
      );
      const r = rows[0]!;
      const parts = cols
        .map((c, i) => ({ name: c.name, bytes: Number(r[`c${i}`]) / runs }))
        .filter((c) => c.bytes >= 1)
        .sort((a, b) => b.bytes - a.bytes)
        .map((c) => `${c.name} ${c.bytes.toFixed(0)}`);
      console.log(
        `  ${table} (${(Number(r.n) / runs).toFixed(2)} rows a run): ${parts.join(", ")}`,
      );
    }
  } finally {
    await client.end();
  }
}

/**
 * Rewrites every table of the schema without its dead rows (`full`), or only marks their space
 * free for new rows, as autovacuum does.
 */
export async function vacuum(url: string, schema: string, full = true): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ table: string }>(
      `SELECT c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    );
    for (const r of rows) {
      await client.query(`VACUUM ${full ? "FULL " : ""}"${schema}"."${r.table}"`);
    }
  } finally {
    await client.end();
  }
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-storage-"));
  // BENCH_STORAGE_DB=<file>: store there and keep the file (to look into it afterwards).
  const dbPath = process.env.BENCH_STORAGE_DB ?? join(dir, "storage.db");
  console.log(`load average at start: ${load()}`);
  const postgres = process.env.BENCH_STORAGE_POSTGRES;
  const schema = `bench_storage_${process.pid}`;
  const proc = await startOurs({
    dir,
    dbPath,
    latencyMs: 0,
    workers: CONCURRENCY,
    ...(postgres
      ? { env: { REFINERY_DATABASE_URL: postgres, REFINERY_DATABASE_SCHEMA: schema } }
      : {}),
  });
  let finished = 0;
  try {
    const client = new Client({
      apiUrl: proc.url,
      callerOptions: { maxConcurrency: CONCURRENCY, maxRetries: 0 },
    });
    const batch = async (runs: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, runs) }, async () => {
          while (next < runs) {
            next++;
            const values = (await client.runs.wait(randomUUID(), "refine", {
              input: { task: TASK },
              config: { configurable: { ...RUN_OPTIONS } },
              ifNotExists: "create",
              // Fails the bench rather than hanging it if a run's wait never returns.
              signal: AbortSignal.timeout(180_000),
            })) as { stopReason?: string; drafts?: unknown[] };
            if (values?.stopReason !== "max_iterations" || values.drafts?.length !== 3)
              throw new Error(`unexpected run result ${JSON.stringify(values)}`);
            finished++;
          }
        }),
      );
    };
    const started = performance.now();
    await batch(RUNS);
    console.log(
      `${finished} runs at ${CONCURRENCY} concurrent in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    console.log(`load average after the runs: ${load()}`);
    // BENCH_STORAGE_STEADY=<n> (Postgres): n more batches of as many runs, a plain VACUUM (what
    // autovacuum does) after each. Growth from one VACUUM to the next is what a database that
    // autovacuum keeps up with grows by a run; before the VACUUM the batch's dead rows (the
    // checkpoints, blobs and writes its compactions moved) are still there: the most a database
    // holds that way is about that much a run times the runs between two autovacuums.
    const steady = postgres ? Number(process.env.BENCH_STORAGE_STEADY ?? 0) : 0;
    if (postgres && steady > 0) {
      type Sizes = Awaited<ReturnType<typeof postgresBreakdown>>;
      const sum = (rows: Sizes) => rows.reduce((a, t) => a + t.bytes, 0);
      /** Growth a run per table from `a` to `b`, as heap + indexes + TOAST. */
      const growth = (a: Sizes, b: Sizes, runs: number) =>
        b
          .map((t) => {
            const s = a.find((x) => x.table === t.table);
            const heap = t.heap - (s?.heap ?? 0);
            const indexes = t.indexes - (s?.indexes ?? 0);
            const bytes = t.bytes - (s?.bytes ?? 0);
            return { table: t.table, bytes, heap, indexes, toast: bytes - heap - indexes };
          })
          .filter((t) => Math.abs(t.bytes) >= runs * 8)
          .map((t) => {
            const per = (n: number) => (n / runs).toFixed(0);
            return `${t.table} ${per(t.bytes)} = ${per(t.heap)} + ${per(t.indexes)} + ${per(t.toast)}`;
          })
          .join(", ");
      console.log(
        `\nsteady state: ${steady} more batches of ${RUNS} runs, a plain VACUUM after each ` +
          `(bytes a run; per table heap + indexes + TOAST)`,
      );
      await vacuum(postgres, schema, false);
      let start = await postgresBreakdown(postgres, schema);
      for (let k = 1; k <= steady; k++) {
        const first = finished;
        await batch(RUNS);
        const runs = finished - first;
        const before = await postgresBreakdown(postgres, schema);
        await vacuum(postgres, schema, false);
        const after = await postgresBreakdown(postgres, schema);
        console.log(
          `  batch ${k + 1}: ${((sum(after) - sum(start)) / runs).toFixed(0)} from VACUUM to VACUUM ` +
            `(${growth(start, after, runs)}); ${((sum(before) - sum(after)) / runs).toFixed(0)} ` +
            `more before the VACUUM (${growth(after, before, runs)})`,
        );
        start = after;
      }
    }
    await proc.stop();
    if (!postgres) {
      printBreakdown(sqliteBreakdown(dbPath), finished);
      return;
    }
    // As the runs left the tables (dead rows of updates and deletes included, which autovacuum
    // makes reusable, not smaller), then after VACUUM FULL rewrote them: what is stored.
    const before = await postgresBreakdown(postgres, schema);
    await vacuum(postgres, schema);
    const after = await postgresBreakdown(postgres, schema);
    const total = (rows: { bytes: number }[]) => rows.reduce((a, t) => a + t.bytes, 0);
    console.log(`\nPostgres schema ${schema}: bytes per run over ${finished} runs`);
    console.log(`${"table".padEnd(32)} | as left | after VACUUM FULL`);
    for (const t of before) {
      const a = after.find((x) => x.table === t.table)?.bytes ?? 0;
      if (t.bytes > 8192 || a > 8192)
        console.log(
          `${t.table.padEnd(32)} | ${(t.bytes / finished).toFixed(0).padStart(7)} | ${(a / finished).toFixed(0).padStart(7)}`,
        );
    }
    console.log(
      `all tables (heap, TOAST, indexes; ${before.length} tables, each at least one page): ` +
        `${(total(before) / finished).toFixed(0)} bytes per run as left, ` +
        `${(total(after) / finished).toFixed(0)} after VACUUM FULL; target ${TARGET_BYTES}: ` +
        `${total(after) / finished <= TARGET_BYTES ? "met" : "MISSED"} (after VACUUM FULL)`,
    );
    console.log(`\ncolumn bytes per run (pg_column_size, after VACUUM FULL), five largest tables:`);
    const largest = [...after].sort((a, b) => b.bytes - a.bytes).slice(0, 5);
    await postgresColumns(
      postgres,
      schema,
      largest.map((t) => t.table),
      finished,
    );
  } finally {
    await proc.stop(3_000).catch(() => undefined);
    if (postgres && process.env.BENCH_STORAGE_KEEP === "1") console.log(`kept schema ${schema}`);
    else if (postgres) await dropSchema(postgres, schema).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
