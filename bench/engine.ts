// Engine overhead bench (npm run bench:engine): one refinement run through our `refine` graph vs
// a bare LangGraph graph of the same shape, same zero-latency model, same checkpointer type.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HumanMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  Annotation,
  Command,
  END,
  MemorySaver,
  START,
  StateGraph,
  type BaseCheckpointSaver,
} from "@langchain/langgraph";
import type Database from "better-sqlite3";
import { openSqliteCheckpointer } from "../core/checkpointer.ts";
import type { RefineOptions } from "../core/config.ts";
import type { ModelProvider } from "../core/models/provider.ts";
import type { ModelRole } from "../core/models/types.ts";
import { createSettingsResolver } from "../core/settings.ts";
import { createAnswerMatchVerifier } from "../core/verifiers/answer-match.ts";
import { answerMatchSpecSchema } from "../core/verifiers/spec.ts";
import { createRefineGraph } from "../graphs/refine.ts";
import {
  BenchChatModel,
  describeMachine,
  formatMachine,
  median,
  pairedRatio,
  runInterleaved,
  type BenchReply,
  type VariantTiming,
} from "./support.ts";

const env = process.env;
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
const RUNS = Number(env.BENCH_RUNS ?? 300);
const WARMUP = Number(env.BENCH_WARMUP ?? 30);
const BLOCK = Number(env.BENCH_BLOCK ?? 10);
/**
 * How the bare graph routes: `edges` (conditional edges, the headline and every earlier figure)
 * or `command` (nodes return `Command({ goto })`, as ours does since 9637322).
 */
const BARE_ROUTING = env.BENCH_BARE_ROUTING === "command" ? "command" : "edges";
const TARGET = 1.15;

const MAX_ITERATIONS = 3;
/** generate + 3 x (critique + verify) + 2 x revise */
const NODE_RUNS = 9;
/** generate + 3 critiques + 2 revisions */
const MODEL_CALLS = 6;
const TASK = "What is 2 + 2?";
const EXPECTED = 4;

/**
 * Generate answers 3, every critique asks for a revision and revisions alternate 5 and 6: the
 * check never passes and no revision repeats the draft before it, so every run hits the cap.
 */
function createReply(): BenchReply {
  let revisions = 0;
  return (role) => {
    if (role === "critique") {
      return '{"verdict":"revise","score":0.3,"issues":["the final answer is wrong"]}';
    }
    if (role === "revise") return `Let me fix that.\nAnswer: ${5 + (revisions++ % 2)}`;
    return "Two plus two.\nAnswer: 3";
  };
}

interface Built {
  model: BenchChatModel;
  graph: {
    invoke(input: { task: string }, config: RunnableConfig): Promise<unknown>;
    stream(
      input: { task: string },
      config: RunnableConfig & { streamMode: "updates" },
    ): Promise<AsyncIterable<unknown>>;
  };
}

// ---------------------------------------------------------------------------------------------
// Ours: the real refine graph and settings resolver, one answer_match verifier.

function createOurs(checkpointer: BaseCheckpointSaver): Built {
  const model = new BenchChatModel(createReply());
  const provider: ModelProvider = { offline: false, forRole: () => model };
  const defaults: RefineOptions = {
    maxIterations: MAX_ITERATIONS,
    verifiers: [{ kind: "answer_match", expected: EXPECTED }],
    retry: { retries: 0, baseDelayMs: 0 },
  };
  const settings = createSettingsResolver({ provider, defaults });
  return { model, graph: createRefineGraph({ settings, checkpointer }) };
}

// ---------------------------------------------------------------------------------------------
// Bare: the same shape written directly against LangGraph, with a minimal state.

const BareState = Annotation.Root({
  task: Annotation<string>(),
  drafts: Annotation<string[], string>({
    reducer: (left, right) => left.concat(right),
    default: () => [],
  }),
  /** The critic's reply (a channel cannot share the `critique` node's name). */
  review: Annotation<string>(),
  /** Verdict on the newest draft; revise clears it, so the edges only see a fresh one. */
  verdict: Annotation<"pass" | "fail" | null>(),
  iteration: Annotation<number>(),
});
type BareStateType = typeof BareState.State;

function createBare(checkpointer: BaseCheckpointSaver): Built {
  const model = new BenchChatModel(createReply());
  // The same check as ours, built once and called directly.
  const check = createAnswerMatchVerifier(
    answerMatchSpecSchema.parse({ kind: "answer_match", expected: EXPECTED }),
    "answer_match",
  );
  const ask = async (role: ModelRole, prompt: string, config: RunnableConfig) => {
    const reply = await model.invoke([new HumanMessage(prompt)], { ...config, refineryRole: role });
    return String(reply.content);
  };
  const last = (s: BareStateType) => s.drafts[s.drafts.length - 1] ?? "";
  const done = (s: BareStateType) =>
    s.verdict === "pass" || (s.verdict === "fail" && s.iteration >= MAX_ITERATIONS);
  const unlessDone =
    <N extends string>(next: N) =>
    (s: BareStateType): N | typeof END =>
      done(s) ? END : next;

  type BareUpdate = Partial<Omit<BareStateType, "drafts">> & { drafts?: string };
  type BareNode = (s: BareStateType, config: RunnableConfig) => Promise<BareUpdate>;
  const nodes: Record<"generate" | "critique" | "verify" | "revise", BareNode> = {
    generate: async (s, config) => ({
      drafts: await ask("generate", `Task:\n${s.task}`, config),
      iteration: 1,
      verdict: null,
    }),
    critique: async (s, config) => ({
      review: await ask("critique", `Task:\n${s.task}\nDraft:\n${last(s)}`, config),
    }),
    verify: async (s) => {
      const result = await check.verify(last(s), { task: s.task, iteration: s.iteration });
      return { verdict: result.pass ? ("pass" as const) : ("fail" as const) };
    },
    revise: async (s, config) => ({
      drafts: await ask(
        "revise",
        `Task:\n${s.task}\nDraft:\n${last(s)}\nCritique:\n${s.review}`,
        config,
      ),
      iteration: s.iteration + 1,
      verdict: null,
    }),
  };
  const next = { generate: "critique", critique: "verify", verify: "revise", revise: "critique" };

  if (BARE_ROUTING === "command") {
    // done() reads only verdict and iteration, two last-value channels.
    const routed = (name: keyof typeof nodes) => async (s: BareStateType, c: RunnableConfig) => {
      const update = await nodes[name](s, c);
      const goto = done({ ...s, ...update, drafts: s.drafts }) ? END : next[name];
      return new Command({ update, goto });
    };
    const graph = new StateGraph(BareState)
      .addNode("generate", routed("generate"), { ends: ["critique", END] })
      .addNode("critique", routed("critique"), { ends: ["verify", END] })
      .addNode("verify", routed("verify"), { ends: ["revise", END] })
      .addNode("revise", routed("revise"), { ends: ["critique", END] })
      .addEdge(START, "generate")
      .compile({ checkpointer, name: "bare" });
    return { model, graph };
  }
  const graph = new StateGraph(BareState)
    .addNode("generate", nodes.generate)
    .addNode("critique", nodes.critique)
    .addNode("verify", nodes.verify)
    .addNode("revise", nodes.revise)
    .addEdge(START, "generate")
    .addConditionalEdges("generate", unlessDone("critique"), ["critique", END])
    .addConditionalEdges("critique", unlessDone("verify"), ["verify", END])
    .addConditionalEdges("verify", unlessDone("revise"), ["revise", END])
    .addConditionalEdges("revise", unlessDone("critique"), ["critique", END])
    .compile({ checkpointer, name: "bare" });
  return { model, graph };
}

// ---------------------------------------------------------------------------------------------
// Stores

interface Store {
  saver: BaseCheckpointSaver;
  /** What one thread left in the store (checkpoints with their metadata, writes), when the store can tell (SQLite). */
  persisted(threadId: string): Persisted | undefined;
  close(): void;
}

interface Persisted {
  checkpoints: number;
  checkpointBytes: number;
  writes: number;
  writeBytes: number;
}

interface StoreKind {
  label: string;
  open(name: string): Store;
}

function sqliteStore(dir: string): StoreKind {
  return {
    label: "SqliteSaver (temp file, WAL, synchronous=NORMAL, as openSqliteCheckpointer sets it)",
    open(name) {
      const opened = openSqliteCheckpointer(join(dir, `${name}.db`));
      const db = opened.db as Database.Database;
      return {
        saver: opened.saver,
        persisted(threadId) {
          const c = db
            .prepare(
              "SELECT count(*) AS n, sum(length(checkpoint) + length(metadata)) AS b FROM checkpoints WHERE thread_id = ?",
            )
            .get(threadId) as { n: number; b: number };
          const w = db
            .prepare(
              "SELECT count(*) AS n, sum(length(value)) AS b FROM writes WHERE thread_id = ?",
            )
            .get(threadId) as { n: number; b: number };
          return { checkpoints: c.n, checkpointBytes: c.b, writes: w.n, writeBytes: w.b };
        },
        close: () => opened.close(),
      };
    },
  };
}

const memoryStore: StoreKind = {
  label: "MemorySaver",
  open: () => ({ saver: new MemorySaver(), persisted: () => undefined, close: () => {} }),
};

// ---------------------------------------------------------------------------------------------
// The check before timing: both variants do exactly the run the bench claims to measure.

async function checkRun(name: string, built: Built, store: Store): Promise<Persisted | undefined> {
  const threadId = `${name}-check`;
  const callsBefore = built.model.calls;
  const nodes: string[] = [];
  const stream = await built.graph.stream(
    { task: TASK },
    { configurable: { thread_id: threadId }, streamMode: "updates" },
  );
  for await (const chunk of stream) nodes.push(...Object.keys(chunk as object));
  const calls = built.model.calls - callsBefore;
  if (nodes.length !== NODE_RUNS || calls !== MODEL_CALLS) {
    throw new Error(
      `${name}: expected ${NODE_RUNS} node runs and ${MODEL_CALLS} model calls, got ` +
        `${nodes.length} (${nodes.join(" ")}) and ${calls}`,
    );
  }
  return store.persisted(threadId);
}

async function checkOursStops(built: Built): Promise<void> {
  const out = (await built.graph.invoke(
    { task: TASK },
    { configurable: { thread_id: "ours-check-stop" } },
  )) as { stopReason?: unknown; drafts?: unknown[] };
  if (out.stopReason !== "max_iterations" || out.drafts?.length !== MAX_ITERATIONS) {
    throw new Error(
      `ours: expected to stop at max_iterations with ${MAX_ITERATIONS} drafts, got ` +
        `${String(out.stopReason)} with ${out.drafts?.length} drafts`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds

interface RoundResult {
  ours: VariantTiming;
  bare: VariantTiming;
  ratio: number;
  paired: number;
  cpuRatio: number;
  persisted?: { ours: Persisted; bare: Persisted };
}

async function benchRound(kind: StoreKind, round: number): Promise<RoundResult> {
  const oursStore = kind.open(`ours-${round}`);
  const bareStore = kind.open(`bare-${round}`);
  try {
    const ours = createOurs(oursStore.saver);
    const bare = createBare(bareStore.saver);
    const oursPersisted = await checkRun("ours", ours, oursStore);
    const barePersisted = await checkRun("bare", bare, bareStore);
    await checkOursStops(ours);
    const invoke = (built: Built, threadId: string) =>
      built.graph.invoke({ task: TASK }, { configurable: { thread_id: threadId } });
    const [o, b] = await runInterleaved(
      [
        { name: "ours", run: async (i) => void (await invoke(ours, `ours-${i}`)) },
        { name: "bare", run: async (i) => void (await invoke(bare, `bare-${i}`)) },
      ],
      { runs: RUNS, warmup: WARMUP, blockSize: BLOCK },
    );
    if (!o || !b) throw new Error("runInterleaved returned no timings");
    return {
      ours: o,
      bare: b,
      ratio: o.msPerRun / b.msPerRun,
      paired: pairedRatio(o, b),
      cpuRatio: o.cpuMsPerRun / b.cpuMsPerRun,
      ...(oursPersisted && barePersisted
        ? { persisted: { ours: oursPersisted, bare: barePersisted } }
        : {}),
    };
  } finally {
    oursStore.close();
    bareStore.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const f = (n: number, digits = 2) => n.toFixed(digits);

function report(label: string, rounds: RoundResult[]): number {
  const med = (pick: (r: RoundResult) => number) => median(rounds.map(pick));
  console.log(`\n### ${label}\n`);
  console.log(
    "| round | ours ms/run | bare ms/run | ours/bare | paired blocks | ours CPU ms/run | bare CPU ms/run | CPU ours/bare |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  const row = (name: string, r: (p: (x: RoundResult) => number) => number) =>
    console.log(
      `| ${name} | ${f(r((x) => x.ours.msPerRun))} | ${f(r((x) => x.bare.msPerRun))} | ` +
        `${f(r((x) => x.ratio))}x | ${f(r((x) => x.paired))}x | ` +
        `${f(r((x) => x.ours.cpuMsPerRun))} | ${f(r((x) => x.bare.cpuMsPerRun))} | ` +
        `${f(r((x) => x.cpuRatio))}x |`,
    );
  rounds.forEach((x, i) => row(String(i + 1), (pick) => pick(x)));
  row("**median**", med);
  const persisted = rounds[0]?.persisted;
  if (persisted) {
    const line = (p: Persisted) =>
      `${p.checkpoints} checkpoints (${f(p.checkpointBytes / 1024, 1)} KiB), ` +
      `${p.writes} writes (${f(p.writeBytes / 1024, 1)} KiB), ` +
      `${f((p.checkpointBytes + p.writeBytes) / 1024, 1)} KiB in all`;
    console.log(`\npersisted per run: ours ${line(persisted.ours)}; bare ${line(persisted.bare)}`);
  }
  return med((x) => x.ratio);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-engine-"));
  const sqlite = sqliteStore(dir);
  console.log(`machine: ${formatMachine(describeMachine())}`);
  console.log(
    `method: ${ROUNDS} rounds; per round and store, ${RUNS} timed runs per variant after ` +
      `${WARMUP} warm-up runs, interleaved in alternating blocks of ${BLOCK}; ` +
      `${NODE_RUNS} node runs and ${MODEL_CALLS} model calls per run; a fresh thread per run; ` +
      `bare graph routed with ${BARE_ROUTING === "command" ? "Command({ goto })" : "conditional edges"}`,
  );
  try {
    const results = new Map<StoreKind, RoundResult[]>([
      [sqlite, []],
      [memoryStore, []],
    ]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [kind, list] of results) {
        const r = await benchRound(kind, round);
        list.push(r);
        process.stderr.write(
          `round ${round + 1}/${ROUNDS} ${kind.label.split(" ")[0]}: ours ${f(r.ours.msPerRun)} ms, ` +
            `bare ${f(r.bare.msPerRun)} ms, ${f(r.ratio)}x (CPU ${f(r.cpuRatio)}x)\n`,
        );
      }
    }
    const ratio = report(sqlite.label, results.get(sqlite) ?? []);
    report(memoryStore.label, results.get(memoryStore) ?? []);
    const verdict = ratio <= TARGET ? "meets" : "misses";
    console.log(
      `\nours/bare (SqliteSaver, median over ${ROUNDS} rounds of mean ms/run): ${f(ratio)}x, ` +
        `which ${verdict} the ${TARGET}x target`,
    );
  } finally {
    if (!env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
