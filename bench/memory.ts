// Lessons-memory bench (npm run bench:memory), SIMULATED: a stream of tasks from a few recurring
// families runs through the real `refine` graph on the offline simulated model, once with the
// lessons memory switched off and once with it on (real SQLite store, real reflect step), same
// seed, same tasks. Reports iterations and tokens per task for each half of the stream and per
// block (the learning curves), over several seeds, with medians.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemorySaver } from "@langchain/langgraph";
import { openSqliteCheckpointer } from "../core/checkpointer.ts";
import type { RefineOptions } from "../core/config.ts";
import { LessonMemory } from "../core/memory/lessons.ts";
import { openStore } from "../core/memory/open-store.ts";
import { createModelProvider } from "../core/models/provider.ts";
import { createSimulatedModel } from "../core/models/simulated.ts";
import { mulberry32 } from "../core/random.ts";
import { createSettingsResolver } from "../core/settings.ts";
import type { RefineStateType, Strategy } from "../core/state.ts";
import { createLearningLoop, lessonSourceFor } from "../graphs/learning.ts";
import { createRefineGraph } from "../graphs/refine.ts";
import { describeMachine, formatMachine, median } from "./support.ts";

const env = process.env;
const SEEDS = (env.BENCH_SEEDS ?? "1,2,3,4,5,6,7,8,9,10").split(",").map(Number);
const TASKS = Number(env.BENCH_TASKS ?? 160);
const BLOCK = Number(env.BENCH_BLOCK ?? 10);
const STRATEGIES = (env.BENCH_STRATEGIES ?? "self-refine,proactive").split(",") as Strategy[];
const ASSISTANT = "bench-assistant";
/** Lessons per generate prompt to measure, each as its own memory-on stream (default: 2 and 1). */
const LESSONS = (env.BENCH_LESSONS ?? "2").split(",").map(Number);

interface Task {
  family: string;
  task: string;
  answer: string;
  /** The run's own verifiers (default: the `Answer:` line regex). */
  verifiers?: RefineOptions["verifiers"];
}

const TICKET_SCHEMA = {
  type: "object",
  required: ["customer", "product", "issue", "priority"],
  properties: {
    customer: { type: "string" },
    product: { type: "string" },
    issue: { type: "string" },
    priority: { type: "string", enum: ["low", "normal", "high"] },
  },
};

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Five families written for this bench: four word problems and a support-ticket extraction; values vary, wording recurs. */
const FAMILIES: Record<string, (r: () => number) => Task> = {
  speed: (r) => {
    const minutes = pick(r, [30, 40, 45, 48, 50, 75, 90, 120]);
    const speed = pick(r, [36, 48, 54, 60, 72, 84, 90, 96]);
    const km = (speed * minutes) / 60;
    const who = pick(r, ["A train", "A bus", "A cyclist", "A ferry", "A delivery van"]);
    return {
      family: "speed",
      task: `${who} travels ${km} km in ${minutes} minutes. What is its average speed in kilometres per hour?`,
      answer: String(speed),
    };
  },
  discount: (r) => {
    const price = pick(r, [40, 60, 80, 120, 160, 240, 300]);
    const off = pick(r, [10, 15, 20, 25, 30, 40]);
    const item = pick(r, ["jacket", "lamp", "bicycle helmet", "backpack", "kettle"]);
    return {
      family: "discount",
      task: `A ${item} normally costs ${price} dollars and is sold at ${off} percent off. What is the sale price in dollars?`,
      answer: String((price * (100 - off)) / 100),
    };
  },
  paint: (r) => {
    const coverage = pick(r, [6, 8, 10, 12]);
    const litres = pick(r, [3, 4, 5, 6, 7, 9]);
    const width = pick(r, [2, 3, 4, 6]);
    const area = coverage * litres;
    const height = area / width;
    return {
      family: "paint",
      task: `A wall is ${width} metres wide and ${height} metres high. One litre of paint covers ${coverage} square metres. How many litres of paint are needed for the wall?`,
      answer: String(litres),
    };
  },
  bill: (r) => {
    const friends = pick(r, [3, 4, 5, 6, 8]);
    const each = pick(r, [12, 15, 18, 21, 24, 30]);
    const tip = pick(r, [2, 3, 4, 5]) * friends;
    return {
      family: "bill",
      task: `${friends} friends share a restaurant bill of ${each * friends - tip} dollars and a tip of ${tip} dollars equally. How much does each friend pay in dollars?`,
      answer: String(each),
    };
  },
  ticket: (r) => {
    const customer = pick(r, [
      "Dana Ruiz",
      "Kofi Mensah",
      "Li Wei",
      "Sara Novak",
      "Omar Haddad",
      "Ines Costa",
    ]);
    const product = pick(r, [
      "the X200 router",
      "the Pro laptop dock",
      "the solar charger",
      "the smart thermostat",
      "the travel kettle",
    ]);
    const issue = pick(r, [
      "stops working after an hour",
      "arrived with a cracked case",
      "will not pair with my phone",
      "keeps restarting at night",
      "shows a red error light",
    ]);
    const priority = pick(r, ["low", "normal", "high"] as const);
    const urgency = {
      low: "No rush on this one.",
      normal: "Please look at it this week.",
      high: "This is urgent: our office depends on it.",
    }[priority];
    const order = 10_000 + Math.floor(r() * 89_999);
    const task =
      `Extract the support ticket in the message as one JSON object that matches this JSON Schema, and reply with the JSON object only.\nSchema: ${JSON.stringify(TICKET_SCHEMA)}\n` +
      `Message: Hello, this is ${customer} (order ${order}). I bought ${product} last month and it ${issue}. ` +
      `I have already tried switching it off and on again, checked the cables and read the manual, and nothing helped. ${urgency} Thanks for your help.`;
    return {
      family: "ticket",
      task,
      answer: JSON.stringify({ customer, product: product.replace(/^the /, ""), issue, priority }),
      verifiers: [{ kind: "json_schema", id: "ticket", schema: TICKET_SCHEMA }],
    };
  },
};

function stream(seed: number, n: number): Task[] {
  const r = mulberry32(seed * 7919);
  const names = Object.keys(FAMILIES);
  const seen = new Set<string>();
  const out: Task[] = [];
  while (out.length < n) {
    const t = FAMILIES[pick(r, names)]!(r);
    if (seen.has(t.task)) continue;
    seen.add(t.task);
    out.push(t);
  }
  return out;
}

interface TaskResult {
  iterations: number;
  tokens: number;
  correct: boolean;
  lessonsUsed: number;
}

async function runStream(
  seed: number,
  tasks: Task[],
  strategy: Strategy,
  memoryOn: boolean,
  dir: string,
  lessonsPerPrompt = 2,
): Promise<TaskResult[]> {
  const answerKey = Object.fromEntries(tasks.map((t) => [t.task, t.answer]));
  const simulated = { seed, answerKey };
  const oracle = createSimulatedModel(simulated);
  const provider = createModelProvider({ model: "simulated" });
  const resolve = createSettingsResolver({ provider });
  const db = openSqliteCheckpointer(
    join(dir, `lessons-${seed}-${strategy}-${memoryOn}-${lessonsPerPrompt}.db`),
  );
  const opened = await openStore({ db: db.db! });
  const memory = new LessonMemory(opened.store);
  const loop = createLearningLoop({ memory });
  const graph = createRefineGraph({
    settings: resolve,
    checkpointer: new MemorySaver(),
    ...(memoryOn ? { lessons: lessonSourceFor(memory, ASSISTANT) } : {}),
  });
  const optionsFor = (t: Task): RefineOptions => ({
    strategy,
    maxIterations: 3,
    verifiers: t.verifiers ?? [
      {
        kind: "regex",
        id: "answer-line",
        mustMatch: ["^Answer: *-?[0-9][0-9,]*(\\.[0-9]+)? *$"],
        flags: "m",
      },
    ],
    models: { default: { provider: "simulated", simulated } },
    memory: { enabled: memoryOn, lessons: lessonsPerPrompt },
  });
  const results: TaskResult[] = [];
  try {
    for (const [i, t] of tasks.entries()) {
      const threadId = `bench-${seed}-${strategy}-${memoryOn}-${i}`;
      const values = (await graph.invoke(
        { task: t.task, options: optionsFor(t) },
        { configurable: { thread_id: threadId, assistant_id: ASSISTANT } },
      )) as RefineStateType;
      if (memoryOn) {
        await loop.onRunEnd({
          values: values as unknown as Record<string, unknown>,
          run_id: threadId,
          thread_id: threadId,
          assistant_id: ASSISTANT,
          graph_id: "refine",
        });
      }
      results.push({
        iterations: values.drafts.length,
        tokens: values.usage.totalTokens,
        correct: oracle.isCorrect(t.task, values.answer ?? ""),
        lessonsUsed: values.lessons.length,
      });
    }
  } finally {
    await opened.close();
    db.close();
  }
  return results;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);

function halves(rs: TaskResult[]) {
  const h = Math.floor(rs.length / 2);
  const part = (xs: TaskResult[]) => ({
    iterations: mean(xs.map((x) => x.iterations)),
    tokens: mean(xs.map((x) => x.tokens)),
    accuracy: mean(xs.map((x) => (x.correct ? 1 : 0))),
    withLessons: mean(xs.map((x) => (x.lessonsUsed > 0 ? 1 : 0))),
  });
  return { first: part(rs.slice(0, h)), second: part(rs.slice(h)) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-bench-memory-"));
  const machine = describeMachine();
  const lines: string[] = [];
  const out = (s = "") => {
    lines.push(s);
    console.log(s);
  };
  out(`## Lessons memory (npm run bench:memory) — SIMULATED`);
  out();
  out(formatMachine(machine));
  out();
  out(
    `${TASKS} tasks per stream from ${Object.keys(FAMILIES).length} recurring families, seeds ${SEEDS.join(", ")}, max 3 iterations, simulated model (all outputs simulated).`,
  );
  try {
    const offCache = new Map<string, TaskResult[]>();
    for (const [strategy, lessonsPerPrompt] of STRATEGIES.flatMap((st) =>
      LESSONS.map((l) => [st, l] as const),
    )) {
      const perSeed: {
        seed: number;
        off: ReturnType<typeof halves>;
        on: ReturnType<typeof halves>;
        offRs: TaskResult[];
        onRs: TaskResult[];
      }[] = [];
      for (const seed of SEEDS) {
        const tasks = stream(seed, TASKS);
        const offKey = `${strategy}/${seed}`;
        const offRs = offCache.get(offKey) ?? (await runStream(seed, tasks, strategy, false, dir));
        offCache.set(offKey, offRs);
        const onRs = await runStream(seed, tasks, strategy, true, dir, lessonsPerPrompt);
        perSeed.push({ seed, off: halves(offRs), on: halves(onRs), offRs, onRs });
      }
      out();
      out(`### Strategy ${strategy}, ${lessonsPerPrompt} lesson(s) per prompt (simulated)`);
      out();
      out(
        "| seed | memory | iterations/task 1st half | 2nd half | tokens/task 1st half | 2nd half | accuracy 1st | 2nd | tasks with lessons, 2nd half |",
      );
      out("|---|---|---|---|---|---|---|---|---|");
      for (const s of perSeed) {
        for (const [label, h] of [
          ["off", s.off],
          ["on", s.on],
        ] as const) {
          out(
            `| ${s.seed} | ${label} | ${f2(h.first.iterations)} | ${f2(h.second.iterations)} | ${f1(h.first.tokens)} | ${f1(h.second.tokens)} | ${(h.first.accuracy * 100).toFixed(0)}% | ${(h.second.accuracy * 100).toFixed(0)}% | ${(h.second.withLessons * 100).toFixed(0)}% |`,
          );
        }
      }
      const med = (fn: (s: (typeof perSeed)[number]) => number) => median(perSeed.map(fn));
      const itOff = med((s) => s.off.second.iterations);
      const itOn = med((s) => s.on.second.iterations);
      const tokOff = med((s) => s.off.second.tokens);
      const tokOn = med((s) => s.on.second.tokens);
      out(
        `| **median** | off | ${f2(med((s) => s.off.first.iterations))} | ${f2(itOff)} | ${f1(med((s) => s.off.first.tokens))} | ${f1(tokOff)} | ${(med((s) => s.off.first.accuracy) * 100).toFixed(0)}% | ${(med((s) => s.off.second.accuracy) * 100).toFixed(0)}% | - |`,
      );
      out(
        `| **median** | on | ${f2(med((s) => s.on.first.iterations))} | ${f2(itOn)} | ${f1(med((s) => s.on.first.tokens))} | ${f1(tokOn)} | ${(med((s) => s.on.first.accuracy) * 100).toFixed(0)}% | ${(med((s) => s.on.second.accuracy) * 100).toFixed(0)}% | ${(med((s) => s.on.second.withLessons) * 100).toFixed(0)}% |`,
      );
      out();
      out(
        `Second half, memory on / off (median over seeds): iterations/task ${f2(itOn)} / ${f2(itOff)} = ${f2(itOn / itOff)}x; tokens/task ${f1(tokOn)} / ${f1(tokOff)} = ${f2(tokOn / tokOff)}x; per-seed token ratios ${perSeed.map((s) => f2(s.on.second.tokens / s.off.second.tokens)).join(", ")}.`,
      );
      out();
      out(`Learning curves (mean tokens/task per block of ${BLOCK} tasks, median over seeds):`);
      out();
      const blocks = Math.ceil(TASKS / BLOCK);
      out(
        `| tasks | ${Array.from({ length: blocks }, (_, b) => `${b * BLOCK + 1}-${Math.min(TASKS, (b + 1) * BLOCK)}`).join(" | ")} |`,
      );
      out(`|---|${"---|".repeat(blocks)}`);
      for (const [label, key] of [
        ["memory off", "offRs"],
        ["memory on", "onRs"],
      ] as const) {
        /** Per block of BLOCK tasks: the median over seeds of the block's mean of `metric`. */
        const curve = (metric: "tokens" | "iterations") =>
          Array.from({ length: blocks }, (_, b) =>
            median(
              perSeed.map((s) =>
                mean(s[key].slice(b * BLOCK, (b + 1) * BLOCK).map((x) => x[metric])),
              ),
            ),
          );
        out(`| ${label} tokens | ${curve("tokens").map(f1).join(" | ")} |`);
        out(`| ${label} iterations | ${curve("iterations").map(f2).join(" | ")} |`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
