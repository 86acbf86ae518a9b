// npm run diff:langgraph — differential testing against the LangGraph server (issue 22).
// Starts the pinned reference server (@langchain/langgraph-api, installed on first use as
// bench:server does) and Refinery with the same deterministic graphs (diff/langgraph.json),
// replays the corpus (diff/corpus.ts) against both, normalises ids and timestamps, and compares
// statuses, bodies, the headers clients read, SSE event sequences and the requests the SDK makes.
// Every difference not in diff/intended.ts fails the run (exit 1). Flags: --only <substring>
// runs the cases whose route or name contains it; --verbose prints intended differences too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureReferenceServer, startReference } from "../bench/server-procs.ts";
import { systemAssistantId } from "../graphs/registry.ts";
import { silentLogger } from "../server/log.ts";
import { startServer } from "../server/start.ts";
import { CORPUS, type Case } from "./corpus.ts";
import { INTENDED, type Intended } from "./intended.ts";
import { compare, normalize, shapeOf, type Difference } from "./normalize.ts";
import { Target, type Step } from "./target.ts";

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
    ).json()) as { thread_id?: string; assistant_id?: string; metadata?: { created_by?: string } }[];
  for (;;) {
    const threads = await post("/threads/search", { limit: 100 });
    if (threads.length === 0) break;
    for (const t of threads) await fetch(`${url}/threads/${t.thread_id}`, { method: "DELETE" });
  }
  for (;;) {
    const mine = (await post("/assistants/search", { limit: 1000 })).filter(
      (a) => a.metadata?.created_by !== "system",
    );
    if (mine.length === 0) break;
    for (const a of mine) await fetch(`${url}/assistants/${a.assistant_id}`, { method: "DELETE" });
  }
}

/** What is compared of a step: error bodies by shape only (their texts are ours to write). */
function comparable(step: Step): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (step.status !== undefined) out.status = step.status;
  if (step.headers) out.headers = normalize(step.headers);
  if (step.body !== undefined) {
    out.body = (step.status ?? 200) >= 400 ? shapeOf(step.body) : normalize(step.body);
  }
  if (step.events) out.events = normalize(step.events);
  if (step.result !== undefined) out.result = normalize(step.result);
  if (step.error) out.error = step.error;
  if (step.requests) out.requests = normalize(step.requests);
  return out;
}

export interface CaseResult {
  c: Case;
  unexpected: Difference[];
  intended: { d: Difference; why: Intended }[];
  crash?: string;
}

export function diffSteps(ours: Step[], ref: Step[]): Difference[] {
  const out: Difference[] = [];
  const n = Math.max(ours.length, ref.length);
  for (let i = 0; i < n; i++) {
    const o = ours[i];
    const r = ref[i];
    const label = (r ?? o)!.label;
    if (!o) out.push({ path: label, kind: "missing", ref: comparable(r!) });
    else if (!r) out.push({ path: label, kind: "extra", ours: comparable(o) });
    else if (o.status !== r.status) {
      // A different status makes every body difference noise: one difference, bodies attached.
      out.push({
        path: `${label}.status`,
        kind: "value",
        ours: { status: o.status, body: comparable(o).body },
        ref: { status: r.status, body: comparable(r).body },
      });
    } else out.push(...compare(comparable(o), comparable(r), label));
  }
  return out;
}

export function classify(c: Case, diffs: Difference[]): Omit<CaseResult, "c" | "crash"> {
  const unexpected: Difference[] = [];
  const intended: CaseResult["intended"] = [];
  for (const d of diffs) {
    const why = INTENDED.find(
      (e) =>
        (e.route === "*" || e.route === c.route) &&
        (!e.case || e.case.test(c.name)) &&
        (!e.kind || e.kind === d.kind) &&
        e.path.test(d.path),
    );
    if (why) intended.push({ d, why });
    else unexpected.push(d);
  }
  return { unexpected, intended };
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
  const graphs = Object.fromEntries(
    ["echo", "approval", "slow", "chat", "custom"].map((id) => [id, `${GRAPHS}:${id}`]),
  );
  log("starting both servers");
  const [reference, ours] = await Promise.all([
    startReference({ packageDir, dir, latencyMs: 0, workers: 4, graphs }),
    startServer({
      env: {
        REFINERY_DB: join(dir, "ours.db"),
        REFINERY_RUN_THREADS: "0",
        // The reference answers every origin; we answer the origins we are told (CORS case).
        REFINERY_CORS_ORIGINS: CORS_ORIGIN,
      },
      configPath: CONFIG,
      port: 0,
      host: "127.0.0.1",
      log: silentLogger,
      concurrency: 8,
      pollMs: 50,
    }),
  ]);
  // Refinery always serves its own `refine` graph; its system assistant goes, so both servers
  // hold the same assistants (the graph itself stays: /info lists it, an intended difference).
  const refine = await fetch(`${ours.url}/assistants/${systemAssistantId("refine")}`, {
    method: "DELETE",
  });
  if (!refine.ok) log(`could not delete the refine system assistant: ${refine.status}`);
  const results: CaseResult[] = [];
  try {
    const selected = CORPUS.filter(
      (c) => !flags.only || `${c.route} ${c.name}`.includes(flags.only),
    );
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
  const rows = [...routes].map(([route, rs]) => ({
    route,
    cases: rs.length,
    same: rs.filter((r) => !r.unexpected.length && !r.intended.length && !r.crash).length,
    intended: rs.reduce((n, r) => n + r.intended.length, 0),
    unexpected: rs.reduce((n, r) => n + r.unexpected.length + (r.crash ? 1 : 0), 0),
  }));
  const w = Math.max(...rows.map((r) => r.route.length), 5);
  const line = (a: string, b: string, c: string, d: string, e: string) =>
    `${a.padEnd(w)}  ${b.padStart(5)}  ${c.padStart(9)}  ${d.padStart(8)}  ${e.padStart(10)}`;
  console.log(line("route", "cases", "identical", "intended", "unexpected"));
  for (const r of rows) {
    console.log(
      line(r.route, String(r.cases), String(r.same), String(r.intended), String(r.unexpected)),
    );
  }
  const total = (k: "cases" | "same" | "intended" | "unexpected") =>
    String(rows.reduce((n, r) => n + r[k], 0));
  console.log(line("total", total("cases"), total("same"), total("intended"), total("unexpected")));
  for (const r of results) {
    const shown = [
      ...r.unexpected.map(
        (d) => `  UNEXPECTED ${d.kind} ${d.path}: ours ${show(d.ours)} reference ${show(d.ref)}`,
      ),
      ...(verbose
        ? r.intended.map((i) => `  intended ${i.d.kind} ${i.d.path} (${i.why.reason})`)
        : []),
      ...(r.crash ? [`  CRASH ${r.crash}`] : []),
    ];
    if (shown.length) console.log(`\n${r.c.route} — ${r.c.name}\n${shown.join("\n")}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
