// Large-database start-up bench (issue 20): builds a SQLite database of at least --threads threads
// and at least --mb MB (more threads when the threads asked for make a smaller file) in a temporary
// directory (deleted at the end), then times `npm start` to the first 200
// from GET /ok on it, and a restart after SIGKILL with runs in flight back to /ok and to a finished
// runs.wait. The database is grown from real runs: a few seed threads are filled through the
// server (offline model), then their rows in every table keyed by thread_id are copied under new
// thread and run ids with INSERT ... SELECT, so every row has the layout the server wrote.
//
//   npm run bench:large-db                         at least 100,000 threads and 1 GB, 3 repeats
//   npm run bench:large-db -- --threads 10000 --mb 100 --repeats 5
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import { RUN_OPTIONS, TASK } from "./server-graph.ts";
import { startNpm, stopNpm, untilOk, type NpmServer } from "./startup-measures.ts";
import { describeMachine, formatMachine, median } from "./support.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "100000" },
    mb: { type: "string", default: "1024" },
    repeats: { type: "string", default: "3" },
    seeds: { type: "string", default: "8" },
    /** Runs left in flight when the server is killed. */
    inflight: { type: "string", default: "16" },
    /** Build the fixture in this (new) directory and stop there, keeping it (for profiling). */
    "fixture-only": { type: "string" },
  },
});
const THREADS = Number(values.threads);
const TARGET_BYTES = Number(values.mb) * 1024 * 1024;
const REPEATS = Math.max(1, Number(values.repeats));
const SEEDS = Math.max(1, Number(values.seeds));
const INFLIGHT = Number(values.inflight);
const ROOT = resolve(import.meta.dirname, "..");
const LIMIT_MS = 120_000;

const log = (msg: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

/** `npm start` on `db` (dist/ when built), offline model. */
function startServer(db: string): Promise<NpmServer> {
  const env: NodeJS.ProcessEnv = { ...process.env, REFINERY_DB: db, LOG_LEVEL: "warn" };
  delete env.OPENAI_API_KEY;
  return startNpm(ROOT, env);
}

const runWait = (client: Client, threadId: string) =>
  client.runs.wait(threadId, "refine", {
    input: { task: TASK },
    config: { configurable: { ...RUN_OPTIONS } },
    ifNotExists: "create",
    signal: AbortSignal.timeout(LIMIT_MS),
  });

// ---------------------------------------------------------------------------------------------
// The fixture

/** Seed threads through a real server; each gets enough runs to reach the target bytes/thread. */
async function seed(db: string): Promise<void> {
  const server = await startServer(db);
  try {
    await untilOk(server);
    const client = new Client({ apiUrl: server.url });
    const ids = Array.from({ length: SEEDS }, () => crypto.randomUUID());
    const perThread = TARGET_BYTES / THREADS;
    for (let round = 0; round < 50; round++) {
      await Promise.all(ids.map((id) => runWait(client, id)));
      const bytes = statSync(db).size + walSize(db);
      if (bytes / SEEDS >= perThread) break;
    }
  } finally {
    await stopNpm(server, "SIGTERM");
  }
}

const walSize = (db: string) => {
  try {
    return statSync(`${db}-wal`).size;
  } catch {
    return 0;
  }
};

/**
 * Copies the seed threads' rows under new ids until the database holds THREADS threads and
 * TARGET_BYTES. The seeds' size is only an estimate of a copy's (the file's free pages and fixed
 * overhead count in it; a compacted thread is smaller), so the size is checked as it grows.
 */
function grow(path: string): { threads: number; runs: number; bytes: number } {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const tables = (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
  )
    .map(({ name }) => ({
      name,
      // An INTEGER PRIMARY KEY (a rowid alias) is left out: SQLite numbers the copies.
      columns: (
        db.prepare(`PRAGMA table_info("${name}")`).all() as {
          name: string;
          type: string;
          pk: number;
        }[]
      )
        .filter((c) => !(c.pk === 1 && c.type.toUpperCase() === "INTEGER"))
        .map((c) => c.name),
    }))
    .filter((t) => t.columns.includes("thread_id"));
  const seeds = (
    db.prepare("SELECT thread_id FROM refinery_threads").all() as { thread_id: string }[]
  ).map((r) => r.thread_id);
  if (seeds.length === 0) throw new Error("no seed threads");
  db.exec("CREATE TEMP TABLE map (seed TEXT NOT NULL, tid TEXT NOT NULL, k INTEGER NOT NULL)");
  const addMap = db.prepare("INSERT INTO map (seed, tid, k) VALUES (?, ?, ?)");
  const maxSeq = (
    db.prepare("SELECT coalesce(max(seq), 0) AS m FROM refinery_runs").get() as {
      m: number;
    }
  ).m;
  const copies = tables.map(({ name, columns }) => {
    const exprs = columns.map((c) => {
      if (c === "thread_id") return "map.tid";
      // A run id stays a UUID: the new thread id's first 24 characters, the seed run's last 12.
      if (c === "run_id")
        return "CASE WHEN t.run_id IS NULL THEN NULL ELSE substr(map.tid, 1, 24) || substr(t.run_id, 25, 12) END";
      if (name === "refinery_runs" && c === "seq") return `t.seq + map.k * ${maxSeq + 1}`;
      return `t."${c}"`;
    });
    return db.prepare(
      `INSERT INTO "${name}" (${columns.map((c) => `"${c}"`).join(", ")}) ` +
        `SELECT ${exprs.join(", ")} FROM "${name}" t JOIN map ON t.thread_id = map.seed`,
    );
  });
  const BATCH = 2_000;
  let k = 1;
  let made = seeds.length;
  const batch = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) {
      addMap.run(seeds[i % seeds.length], crypto.randomUUID(), k++);
    }
    for (const copy of copies) copy.run();
    db.exec("DELETE FROM map");
  });
  const pageSize = db.pragma("page_size", { simple: true }) as number;
  const bytes = () => (db.pragma("page_count", { simple: true }) as number) * pageSize;
  while (made < THREADS || bytes() < TARGET_BYTES) {
    const n = made < THREADS ? Math.min(BATCH, THREADS - made) : BATCH;
    batch(n);
    made += n;
    if (made % 20_000 < BATCH) log(`fixture: ${made} threads`);
  }
  db.pragma("wal_checkpoint(TRUNCATE)");
  const threads = (db.prepare("SELECT count(*) AS n FROM refinery_threads").get() as { n: number })
    .n;
  const runs = (db.prepare("SELECT count(*) AS n FROM refinery_runs").get() as { n: number }).n;
  db.close();
  return { threads, runs, bytes: statSync(path).size };
}

// ---------------------------------------------------------------------------------------------
// The measures

/** Start-up on the large database to /ok; then stops it gracefully. */
async function coldStart(db: string): Promise<number> {
  const server = await startServer(db);
  try {
    return await untilOk(server);
  } finally {
    await stopNpm(server, "SIGTERM");
  }
}

/**
 * A server with INFLIGHT background runs just created is killed with SIGKILL; the restart is timed
 * to /ok and to a new runs.wait's answer; then the bench waits for the killed runs to finish.
 */
async function restartAfterKill(
  db: string,
): Promise<{ ok: number; run: number; recovered: number }> {
  const first = await startServer(db);
  await untilOk(first);
  const client = new Client({ apiUrl: first.url });
  const threads = Array.from({ length: INFLIGHT }, () => crypto.randomUUID());
  await Promise.all(
    threads.map(async (id) => {
      await client.threads.create({ threadId: id });
      await client.runs.create(id, "refine", {
        input: { task: TASK },
        config: { configurable: { ...RUN_OPTIONS } },
      });
    }),
  );
  await stopNpm(first, "SIGKILL");
  const second = await startServer(db);
  try {
    const ok = await untilOk(second);
    const again = new Client({ apiUrl: second.url });
    await runWait(again, crypto.randomUUID());
    const run = performance.now() - second.startedAt;
    // The killed runs: each thread's last run must end (requeued and finished, or failed).
    for (;;) {
      const runs = await Promise.all(threads.map((id) => again.runs.list(id, { limit: 1 })));
      const open = runs.filter((r) => ["pending", "running"].includes(r[0]?.status ?? "pending"));
      if (open.length === 0) break;
      if (performance.now() - second.startedAt > LIMIT_MS)
        throw new Error("killed runs never ended");
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ok, run, recovered: performance.now() - second.startedAt };
  } finally {
    await stopNpm(second, "SIGTERM");
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${formatMachine(describeMachine())}`);
  console.log(`load average at start: ${load()}`);
  const keep = values["fixture-only"];
  if (keep) mkdirSync(keep);
  const dir = keep ?? mkdtempSync(join(tmpdir(), "refinery-large-db-"));
  const db = join(dir, "refinery.db");
  try {
    let t = performance.now();
    await seed(db);
    const seeded = statSync(db).size + walSize(db);
    const fixture = grow(db);
    log(`fixture built in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    console.log(
      `fixture: ${fixture.threads} threads, ${fixture.runs} runs, ${(fixture.bytes / 2 ** 20).toFixed(0)} MiB ` +
        `(from ${SEEDS} seed threads, ${(seeded / SEEDS / 1024).toFixed(1)} KiB each); the file is in the page cache`,
    );
    if (keep) {
      console.log(`fixture kept at ${db} (delete ${keep} when done)`);
      return;
    }
    const empty = join(dir, "empty.db");
    const starts: number[] = [];
    const emptyStarts: number[] = [];
    const kills: { ok: number; run: number; recovered: number }[] = [];
    for (let i = 0; i < REPEATS; i++) {
      t = performance.now();
      emptyStarts.push(await coldStart(empty));
      starts.push(await coldStart(db));
      kills.push(await restartAfterKill(db));
      log(
        `repeat ${i + 1}: empty ${emptyStarts.at(-1)!.toFixed(0)} ms, large ${starts.at(-1)!.toFixed(0)} ms, ` +
          `after SIGKILL /ok ${kills.at(-1)!.ok.toFixed(0)} ms, runs.wait ${kills.at(-1)!.run.toFixed(0)} ms, ` +
          `killed runs ended ${kills.at(-1)!.recovered.toFixed(0)} ms`,
      );
    }
    const row = (name: string, xs: number[], target: string) =>
      console.log(
        `${name} | ${median(xs).toFixed(0)} ms | ${xs.map((x) => x.toFixed(0)).join(" ")} | ${target}`,
      );
    console.log(`\nmeasure | median | repeats | target`);
    row("npm start → /ok, fresh database", emptyStarts, "");
    row("npm start → /ok, large database", starts, "≤ 2000 ms");
    row(
      `restart after SIGKILL (${INFLIGHT} runs in flight) → /ok`,
      kills.map((k) => k.ok),
      "≤ 2000 ms",
    );
    row(
      "restart after SIGKILL → a new runs.wait answered",
      kills.map((k) => k.run),
      "",
    );
    row(
      "restart after SIGKILL → the killed runs ended",
      kills.map((k) => k.recovered),
      "",
    );
    console.log(`\nload average at end: ${load()}`);
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
