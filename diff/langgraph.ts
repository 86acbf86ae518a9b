// npm run diff:langgraph — differential testing against the LangGraph server (issue 22).
// Starts the pinned reference server (@langchain/langgraph-api, installed on first use as
// bench:server does) and Refinery with the same deterministic graphs (diff/langgraph.json),
// replays the corpus (diff/corpus.ts) against both, normalises ids and timestamps, and compares
// statuses, bodies, the headers clients read, SSE event sequences and the requests the SDK makes.
// Every difference not in diff/intended.ts fails the run (exit 1). Flags: --only <substring>
// runs the cases whose route or name contains it; --verbose prints intended differences too.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureReferenceServer, startReference } from "../bench/server-procs.ts";
import { silentLogger } from "../server/log.ts";
import { startServer } from "../server/start.ts";
import { CORPUS } from "./corpus.ts";
import { classify, diffSteps, type CaseResult } from "./compare.ts";
import { Target } from "./target.ts";

const CONFIG = join(import.meta.dirname, "langgraph.json");
const GRAPHS = join(import.meta.dirname, "graphs.ts");
export const CORS_ORIGIN = "http://localhost:3000";

/**
 * Every case starts from the same server state: no threads, and only the graphs' system
 * assistants (cases run one after the other; both servers keep their state across cases).
 */
async function reset(url: string): Promise<void> {
  const post = async (path: string, body: unknown) =>
    (await (
      await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      })
    ).json()) as {
      thread_id?: string;
      assistant_id?: string;
      metadata?: { created_by?: string };
    }[];
  for (;;) {
    const threads = await post("/threads/search", { limit: 100 });
    if (threads.length === 0) break;
    for (const t of threads) await fetch(`${url}/threads/${t.thread_id}`, { method: "DELETE" });
  }
  // The store: every item under every namespace (a few rounds at most).
  for (let round = 0; round < 3; round++) {
    const { namespaces } = (await post("/store/namespaces", { limit: 1000 })) as unknown as {
      namespaces: string[][];
    };
    if (namespaces.length === 0) break;
    for (const namespace of namespaces) {
      const { items } = (await post("/store/items/search", {
        namespace_prefix: namespace,
        limit: 1000,
      })) as unknown as { items: { key: string }[] };
      for (const { key } of items) {
        await fetch(`${url}/store/items`, {
          method: "DELETE",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ namespace, key }),
        });
      }
    }
  }
  for (;;) {
    const mine = (await post("/assistants/search", { limit: 1000 })).filter(
      (a) => a.metadata?.created_by !== "system",
    );
    if (mine.length === 0) break;
    for (const a of mine) await fetch(`${url}/assistants/${a.assistant_id}`, { method: "DELETE" });
  }
}

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? "∅" : s.length > 160 ? `${s.slice(0, 157)}...` : s;
};

async function main() {
  const { values: flags } = parseArgs({
    options: { only: { type: "string" }, verbose: { type: "boolean", default: false } },
  });
  const dir = mkdtempSync(join(tmpdir(), "refinery-diff-"));
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  const packageDir = ensureReferenceServer(log);
  // The reference serves Refinery's own `refine` graph too (as bench:server runs it), so both
  // servers hold the same system assistants.
  const graphs = {
    ...Object.fromEntries(
      [
        "echo",
        "approval",
        "slow",
        "chat",
        "custom",
        "typed",
        "zod_state",
        "zod_v3",
        "state_schema",
      ].map((id) => [id, `${GRAPHS}:${id}`]),
    ),
    refine: `${join(import.meta.dirname, "..", "bench", "server-graph.ts")}:graph`,
    // Issue 17 (h4): a graph with a runtime context schema.
    ctx: `${join(import.meta.dirname, "context-graph.ts")}:ctx`,
    // Issue 17 (subgraphs): a graph whose nodes are compiled subgraphs.
    nested: `${join(import.meta.dirname, "subgraph-graph.ts")}:nested`,
  };
  copyFileSync(join(import.meta.dirname, "ui.jsx"), join(dir, "ui.jsx"));
  // Both servers derive an Annotation graph's schemas from its TypeScript types, which takes
  // seconds per graph (tens on a loaded machine): give both a deadline well past the cases' 30 s
  // request timeout, and warm them up before the cases run (below).
  process.env.LANGGRAPH_SCHEMA_RESOLVE_TIMEOUT_MS = "600000";
  log("starting both servers");
  const [reference, ours] = await Promise.all([
    startReference({
      packageDir,
      dir,
      latencyMs: 0,
      workers: 4,
      graphs,
      // The same custom app; the UI module must lie inside the reference's project folder.
      http: { app: `${join(import.meta.dirname, "app.ts")}:app` },
      ui: { echo: "./ui.jsx" },
    }),
    startServer({
      env: {
        REFINERY_DB: join(dir, "ours.db"),
        REFINERY_RUN_THREADS: "0",
        // The reference answers every origin; we answer the origins we are told (CORS case).
        REFINERY_CORS_ORIGINS: CORS_ORIGIN,
        // The reference is `langgraph dev`: its dev-only route (POST /internal/truncate) exists.
        REFINERY_DEV: "1",
        REFINERY_SCHEMA_TIMEOUT_MS: "600000",
      },
      configPath: CONFIG,
      port: 0,
      host: "127.0.0.1",
      log: silentLogger,
      concurrency: 8,
      pollMs: 50,
    }),
  ]);
  const results: CaseResult[] = [];
  try {
    const selected = CORPUS.filter(
      (c) => !flags.only || `${c.route} ${c.name}`.includes(flags.only),
    );
    if (selected.some((c) => c.route === "GET /assistants/{assistant_id}/schemas")) {
      log("extracting graph schemas on both servers (once per graph)");
      // One graph at a time per server (the reference starts a worker per request).
      await Promise.all(
        [ours.url, reference.url].map(async (url) => {
          for (const id of Object.keys(graphs)) {
            await fetch(`${url}/assistants/${id}/schemas`).catch((err: unknown) =>
              log(`warming the schemas of ${id} at ${url} failed: ${String(err)}`),
            );
          }
          // Then until the server answers a search again (cases start by resetting with one).
          for (let i = 0; i < 120; i++) {
            const res = await fetch(`${url}/threads/search`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ limit: 1 }),
            }).catch((err: unknown) => err as Error);
            const body = res instanceof Response ? await res.text() : String(res);
            if (res instanceof Response && res.ok && body.startsWith("[")) break;
            log(`after the schemas, ${url}/threads/search answers ${body.slice(0, 200)}`);
            await new Promise((r) => setTimeout(r, 1000));
          }
        }),
      );
    }
    log(`replaying ${selected.length} cases`);
    for (const c of selected) {
      const o = new Target("ours", ours.url);
      const r = new Target("reference", reference.url);
      try {
        await Promise.all([reset(ours.url), reset(reference.url)]);
        await Promise.all([c.run(o), c.run(r)]);
        results.push({ c, ...classify(c, diffSteps(o.steps, r.steps)) });
      } catch (error) {
        results.push({ c, unexpected: [], intended: [], crash: String(error) });
      }
    }
  } finally {
    await Promise.allSettled([ours.close(2_000), reference.stop(2_000)]);
    rmSync(dir, { recursive: true, force: true });
  }
  report(results, flags.verbose ?? false);
  process.exit(results.some((r) => r.unexpected.length || r.crash) ? 1 : 0);
}

function report(results: CaseResult[], verbose: boolean): void {
  const routes = new Map<string, CaseResult[]>();
  for (const r of results) routes.set(r.c.route, [...(routes.get(r.c.route) ?? []), r]);
  const listed = (r: CaseResult, gap: boolean) =>
    r.intended.filter((i) => Boolean(i.why.gap) === gap).length;
  const rows = [...routes].map(([route, rs]) => ({
    route,
    cases: rs.length,
    same: rs.filter((r) => !r.unexpected.length && !r.intended.length && !r.crash).length,
    intended: rs.reduce((n, r) => n + listed(r, false), 0),
    gaps: rs.reduce((n, r) => n + listed(r, true), 0),
    unexpected: rs.reduce((n, r) => n + r.unexpected.length + (r.crash ? 1 : 0), 0),
  }));
  const w = Math.max(...rows.map((r) => r.route.length), 5);
  const cols = ["cases", "identical", "intended", "gaps", "unexpected"];
  const line = (first: string, rest: string[]) =>
    `${first.padEnd(w)}  ${rest.map((v, i) => v.padStart(cols[i]!.length)).join("  ")}`;
  console.log(line("route", cols));
  for (const r of rows) {
    console.log(line(r.route, [r.cases, r.same, r.intended, r.gaps, r.unexpected].map(String)));
  }
  const total = (k: "cases" | "same" | "intended" | "gaps" | "unexpected") =>
    String(rows.reduce((n, r) => n + r[k], 0));
  console.log(
    line("total", [
      total("cases"),
      total("same"),
      total("intended"),
      total("gaps"),
      total("unexpected"),
    ]),
  );
  // Differences by reason: one line per intended entry that matched, with its count.
  const byReason = new Map<string, number>();
  for (const r of results) {
    for (const i of r.intended) {
      const key = `${i.why.gap ? "gap" : "intended"}: ${i.why.reason}`;
      byReason.set(key, (byReason.get(key) ?? 0) + 1);
    }
  }
  console.log("\nlisted differences (count, reason):");
  for (const [reason, n] of [...byReason].sort((a, b) => b[1] - a[1])) {
    console.log(`${String(n).padStart(5)}  ${reason}`);
  }
  for (const r of results) {
    const shown = [
      ...r.unexpected.map(
        (d) => `  UNEXPECTED ${d.kind} ${d.path}: ours ${show(d.ours)} reference ${show(d.ref)}`,
      ),
      ...(verbose
        ? r.intended.map((i) => `  ${i.why.gap ? "gap" : "intended"} ${i.d.kind} ${i.d.path}`)
        : []),
      ...(r.crash ? [`  CRASH ${r.crash}`] : []),
    ];
    if (shown.length) console.log(`\n${r.c.route} — ${r.c.name}\n${shown.join("\n")}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
