// Postgres statement probe (issue 19): one server in this process (`startServer`, run threads off so
// every query goes through this process's `pg`), on its own Postgres schema, optionally with Redis;
// counts the statements each sequential `runs.wait` sends, grouped by their SQL, by wrapping
// `pg.Client.prototype.query`. Prints per-run counts and the p50 latency. Drops its schema at the end.
// Usage: tsx bench/pg-probe.ts [--runs 20] [--warmup 10] [--redis] [--latency-ms 0]
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { Redis } from "ioredis";
import { startServer } from "../server/start.ts";
import { RUN_OPTIONS, TASK } from "./server-graph.ts";
import { percentile } from "./support.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20" },
    warmup: { type: "string", default: "10" },
    redis: { type: "boolean", default: false },
    "latency-ms": { type: "string", default: "0" },
  },
});
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);
const PG_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

// Every query of every pg.Client (pools use Client), keyed by its SQL's first words.
const counts = new Map<string, number>();
const millis = new Map<string, number>();
let counting = false;
let statements = 0;
const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
const original = proto.query;
proto.query = function (this: unknown, ...args: unknown[]) {
  if (counting) {
    const q = args[0];
    const text =
      typeof q === "string" ? q : ((q as { text?: string } | undefined)?.text ?? "(query object)");
    // Inlined literals (multi-statement batches) as ?, and a batch's statements joined by " ; ".
    const key = text
      .replace(/E?'(?:[^']|'')*'/g, "?")
      .split(/;\n/)
      .map((part) => part.replace(/\s+/g, " ").trim().slice(0, 60))
      .join(" ; ")
      .slice(0, 160);
    statements += text.split(/;\n/).length;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const t = performance.now();
    const done = () => millis.set(key, (millis.get(key) ?? 0) + performance.now() - t);
    const last = args.length - 1;
    const cb = args[last];
    if (typeof cb === "function") {
      args[last] = (...r: unknown[]) => {
        done();
        return (cb as (...x: unknown[]) => unknown)(...r);
      };
      return original.apply(this, args);
    }
    const out = original.apply(this, args);
    if (out && typeof (out as Promise<unknown>).then === "function") {
      (out as Promise<unknown>).then(done, () => undefined);
    }
    return out;
  }
  return original.apply(this, args);
};

const tag = `bench_probe_${process.pid}_${randomBytes(3).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "refinery-pg-probe-"));
const server = await startServer({
  env: {
    REFINERY_DB: join(dir, "unused.db"),
    LOG_LEVEL: "error",
    REFINERY_RUN_THREADS: "0",
    REFINERY_PROVIDER_MODULE: `${join(import.meta.dirname, "server-graph.ts")}#benchProvider`,
    BENCH_MODEL_LATENCY_MS: values["latency-ms"],
    REFINERY_DATABASE_URL: PG_URL,
    REFINERY_DATABASE_SCHEMA: tag,
    ...(values.redis ? { REFINERY_REDIS_URL: REDIS_URL, REFINERY_REDIS_PREFIX: `${tag}:` } : {}),
  },
  role: "both",
  configPath: undefined,
  port: 0,
  host: "127.0.0.1",
  concurrency: 8,
});
const client = new Client({ apiUrl: server.url });
const run = async () => {
  const out = (await client.runs.wait(randomUUID(), "refine", {
    input: { task: TASK },
    config: { configurable: { ...RUN_OPTIONS } },
    ifNotExists: "create",
  })) as { drafts?: unknown[] };
  if (out?.drafts?.length !== 3) throw new Error(`unexpected result ${JSON.stringify(out)}`);
};
try {
  for (let i = 0; i < WARMUP; i++) await run();
  // Let heartbeats and sweeps of the warm-up settle out of the count as far as possible.
  await new Promise((r) => setTimeout(r, 200));
  counting = true;
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await run();
    samples.push(performance.now() - t);
  }
  await new Promise((r) => setTimeout(r, 100));
  counting = false;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const totalMs = [...millis.values()].reduce((a, b) => a + b, 0);
  const lines = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  process.stdout.write(
    `load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}; ${RUNS} sequential runs${values.redis ? " (Redis on)" : ""}: ` +
      `${(total / RUNS).toFixed(1)} round trips (queries) and ${(statements / RUNS).toFixed(1)} statements per run, runs.wait p50 ${percentile(samples, 50).toFixed(1)} ms; ` +
      `${(totalMs / RUNS).toFixed(1)} ms per run awaiting statements (summed, may overlap)\n`,
  );
  for (const [sql, n] of lines)
    process.stdout.write(
      `${(n / RUNS).toFixed(2).padStart(6)} ${((millis.get(sql) ?? 0) / n).toFixed(1).padStart(6)} ms  ${sql}\n`,
    );
} finally {
  await server.close(2_000);
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${tag}" CASCADE`);
  await admin.end();
  if (values.redis) {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${tag}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
