// `refinery eval` as a user runs it: a child process of the bin on the offline simulated model,
// and the same entry point against the OpenAI-compatible stub server over loopback HTTP (the real
// model path).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { DEFAULT_PROMPTS, type PromptName } from "../../core/prompts.ts";
import type { ItemRecord } from "../../graphs/eval/index.ts";
import { startOpenAIStub, type ChatRequestBody } from "../support/openai-stub.ts";
import { writeDataset } from "./fixtures.ts";

const BIN = join(import.meta.dirname, "../../cli/bin.mjs");
const dir = mkdtempSync(join(tmpdir(), "refinery-eval-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += String(d)));
  child.stderr.on("data", (d) => (stderr += String(d)));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** The same entry point in-process (no child): for error paths and re-runs, where spawning adds only time. */
async function inProcess(args: string[], env: Record<string, string> = {}): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: { write: (t: string) => void (stdout += t) },
    stderr: { write: (t: string) => void (stderr += t) },
    env,
  });
  return { code, stdout, stderr };
}

const readRecords = (path: string): ItemRecord[] =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as ItemRecord);

describe("refinery eval", () => {
  it("runs on the simulated model: table, JSON summary and SVG chart, all labelled simulated", async () => {
    const dataset = writeDataset(dir, "small");
    const out = join(dir, "out");
    const r = await cli([
      "eval",
      "--dataset",
      dataset,
      "--strategies",
      "vanilla,self-refine",
      "--out",
      out,
      "--seed",
      "7",
      "--concurrency",
      "2",
    ]);
    expect(r.stderr).not.toMatch(/refinery:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SIMULATED/);
    // The parameter set and its source are printed with the results.
    expect(r.stdout).toMatch(
      /^parameters \(defaults of DEFAULT_SIMULATED_OPTIONS, each with its source in docs\/simulated-model\.md; --sim overrides\): .*detectRate=0\.85 .*invisibleErrorRate=0\.58 /m,
    );
    expect(r.stdout).toMatch(/strategy\s+n\s+accuracy\s+tokens\s+tokens\/item\s+calls/);
    expect(r.stdout).toMatch(/^vanilla\s+8\s/m);
    expect(r.stdout).toMatch(/^self-refine\s+8\s/m);
    expect(r.stderr).toMatch(/eval: 16\/16 /); // plain progress lines when not on a terminal
    const summary = JSON.parse(readFileSync(join(out, "small.summary.json"), "utf8"));
    expect(summary).toMatchObject({ label: "simulated", simulated: true, items: 8 });
    expect(summary.strategies.map((s: { strategy: string }) => s.strategy)).toEqual([
      "vanilla",
      "self-refine",
    ]);
    const records = readRecords(join(out, "small.records.jsonl"));
    expect(records).toHaveLength(16);
    const vanilla = summary.strategies[0];
    expect(vanilla.correct).toBe(
      records.filter((x) => x.strategy === "vanilla" && x.final_correct).length,
    );
    const svg = readFileSync(join(out, "small.chart.svg"), "utf8");
    expect(svg).toMatch(/^<svg /);
    expect(svg).toMatch(/SIMULATED/);
    expect(svg.match(/<circle /g)).toHaveLength(2);

    // The same command again finds everything recorded and runs nothing.
    const again = await inProcess([
      "eval",
      "--dataset",
      dataset,
      "--strategies",
      "vanilla,self-refine",
      "--out",
      out,
      "--seed",
      "7",
    ]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/16 already recorded \(resuming\)/);
    expect(readRecords(join(out, "small.records.jsonl"))).toHaveLength(16);
  });

  it.each([
    [["eval"], /--dataset: no dataset given/],
    [["eval", "--dataset", "/no/such.jsonl"], /cannot read dataset \/no\/such\.jsonl/],
    [
      ["eval", "--dataset", "DATASET", "--strategies", "vanilla,telepathy"],
      /--strategies: unknown strategy "telepathy"/,
    ],
    [["eval", "--dataset", "DATASET", "--concurrency", "0"], /--concurrency: expected an integer/],
    [["eval", "--dataset", "DATASET", "--frobnicate"], /unknown option --frobnicate/],
    [["eval", "--dataset", "DATASET", "--replicates", "0"], /--replicates: expected an integer/],
    [
      ["eval", "--dataset", "DATASET", "--seed", "1", "--sim", "frobnicate=1"],
      /--sim frobnicate: unknown field "frobnicate"/,
    ],
    [
      ["eval", "--dataset", "DATASET", "--seed", "1", "--sim", "detectRate=2"],
      /--sim detectRate: Too big/,
    ],
    [
      ["eval", "--dataset", "DATASET", "--seed", "1", "--sim", "families.json.breakRate=2"],
      /--sim families\.json\.breakRate: Too big/,
    ],
    [
      ["eval", "--dataset", "DATASET", "--seed", "1", "--sim", "families.prose.breakRate=0.1"],
      /--sim families.prose: unknown field "prose"/,
    ],
    [
      ["eval", "--dataset", "DATASET", "--seed", "1", "--sim", "detectRate"],
      /--sim: expected NAME=VALUE/,
    ],
    [
      ["eval", "--dataset", "DATASET", "--seed", "1", "--sim", "seed=3"],
      /--sim: seed cannot be set with --sim/,
    ],
  ])("bad input %j: one line, exit 2", async (args, message) => {
    const dataset = writeDataset(dir, "args");
    const r = await inProcess(args.map((a) => (a === "DATASET" ? dataset : a)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("--replicates runs the simulated evaluation under consecutive seeds and pools the records", async () => {
    const dataset = writeDataset(dir, "rep");
    const out = join(dir, "rep-out");
    const args = [
      "eval",
      "--dataset",
      dataset,
      "--strategies",
      "self-refine,proactive",
      "--out",
      out,
      "--seed",
      "3",
      "--replicates",
      "3",
    ];
    const r = await inProcess(args);
    expect(r.stderr).not.toMatch(/refinery:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rep: 8 item\(s\) × 3 seeds, max 3 iteration\(s\)$/m);
    expect(r.stdout).toMatch(/seeds 3-5 pooled, 3 replicates/);
    expect(r.stdout).toMatch(/^self-refine\s+24\s/m);
    expect(r.stdout).toMatch(/^per seed \(simulated\):/m);
    expect(r.stdout).toMatch(/^seed\s+self-refine right\s+proactive right\s+proactive tokens/m);
    const perSeed = [3, 4, 5].map((s) => readRecords(join(out, `rep.seed-${s}.records.jsonl`)));
    const summary = JSON.parse(readFileSync(join(out, "rep.summary.json"), "utf8"));
    expect(summary).toMatchObject({ simulated: true, items: 8, seeds: [3, 4, 5] });
    expect(summary.model.seed).toBeUndefined();
    // The pooled figures are the sums of the replicates' records, and each replicate is its seed's
    // own evaluation (a single-seed run gives the same records).
    const all = perSeed.flat();
    for (const s of summary.strategies) {
      const mine = all.filter((x) => x.strategy === s.strategy);
      expect(s.items).toBe(mine.length);
      expect(s.correct).toBe(mine.filter((x) => x.final_correct).length);
      expect(s.tokens.total).toBe(mine.reduce((n, x) => n + x.tokens.total, 0));
      expect(s.harmed).toBe(mine.filter((x) => x.first_correct && !x.final_correct).length);
    }
    expect(summary.replicates.map((x: { seed: number }) => x.seed)).toEqual([3, 4, 5]);
    const single = join(dir, "rep-single");
    await inProcess([...args.slice(0, 6), single, "--seed", "4"]);
    const strip = (recs: ItemRecord[]) =>
      recs
        .map(({ wall_ms: _w, ...rest }) => rest)
        .sort((a, b) => (a.item_id + a.strategy).localeCompare(b.item_id + b.strategy));
    expect(strip(readRecords(join(single, "rep.records.jsonl")))).toEqual(strip(perSeed[1] ?? []));

    // Again: every replicate resumes from its own records and runs nothing.
    const again = await inProcess(args);
    expect(again.code).toBe(0);
    expect(again.stderr.match(/16 already recorded \(resuming\)/g)).toHaveLength(3);
  });

  it("Ctrl-C during --replicates exits 130 and the same command resumes every seed where it stopped", async () => {
    const items = Array.from({ length: 60 }, (_, i) => ({
      id: `a${i}`,
      task: `What is ${i + 11} * ${i + 3} + ${2 * i + 1}?`,
      reference: (i + 11) * (i + 3) + 2 * i + 1,
    }));
    const dataset = writeDataset(dir, "rep-int", items);
    const out = join(dir, "rep-int-out");
    const args = [BIN, "eval", "--dataset", dataset, "--strategies", "self-refine", "--out", out];
    const seeds = ["--seed", "1", "--replicates", "3", "--concurrency", "1"];
    const child = spawn(process.execPath, [...args, ...seeds], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let sent = false;
    child.stderr.on("data", (d) => {
      stderr += String(d);
      // Interrupt a few items into the second seed.
      if (!sent && /eval: seed 2 3\/60 /.test(stderr)) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(stderr).toMatch(
      /refinery: interrupted after \d+ item runs \(at seed 2\); run the same command again/,
    );
    expect(readRecords(join(out, "rep-int.seed-1.records.jsonl"))).toHaveLength(60);
    const partial = readRecords(join(out, "rep-int.seed-2.records.jsonl")).length;
    expect(partial).toBeGreaterThanOrEqual(3);
    expect(partial).toBeLessThan(60);
    expect(existsSync(join(out, "rep-int.seed-3.records.jsonl"))).toBe(false);

    const again = await inProcess([...args.slice(1), ...seeds]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/eval: seed 1 60 item run\(s\), 60 already recorded/);
    expect(again.stderr).toMatch(
      new RegExp(`eval: seed 2 60 item run\\(s\\), ${partial} already recorded`),
    );
    for (const seed of [1, 2, 3]) {
      const recs = readRecords(join(out, `rep-int.seed-${seed}.records.jsonl`));
      expect(new Set(recs.map((x) => x.item_id)).size).toBe(60);
      expect(recs).toHaveLength(60);
    }
  }, 60_000);

  it("--sim sets a simulation parameter: it reaches the model and the configuration", async () => {
    const dataset = writeDataset(dir, "sim");
    const out = join(dir, "sim-out");
    const base = ["eval", "--dataset", dataset, "--strategies", "proactive", "--out", out];
    const run = async (extra: string[]) => {
      const r = await inProcess([...base, "--seed", "2", "--fresh", ...extra]);
      expect(r.code).toBe(0);
      return JSON.parse(readFileSync(join(out, "sim.summary.json"), "utf8")) as {
        model: Record<string, unknown>;
        strategies: { first_correct: number }[];
      };
    };
    const plain = await run([]);
    const harder = await run(["--sim", "firstDraftErrorRate=1", "--sim", "criticCorrelation=0.5"]);
    expect(plain.model).toMatchObject({ firstDraftErrorRate: 0.35, criticCorrelation: 0 });
    expect(harder.model).toMatchObject({ firstDraftErrorRate: 1, criticCorrelation: 0.5 });
    expect(plain.strategies[0]?.first_correct).toBeGreaterThan(0);
    expect(harder.strategies[0]?.first_correct).toBe(0);
    // Records of another configuration are refused, as for any other parameter (exit 1, as for
    // every configuration conflict).
    const other = await inProcess([...base, "--seed", "2", "--sim", "criticCorrelation=1"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/different configuration/);
  });

  it("--replicates is refused for a real model, before anything runs", async () => {
    const dataset = writeDataset(dir, "rep-real");
    const out = join(dir, "rep-real-out");
    const r = await inProcess(["eval", "--dataset", dataset, "--out", out, "--replicates", "2"], {
      OPENAI_API_KEY: "k",
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^refinery: --replicates: replicates need the offline simulated model .*add --seed N/,
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });

  it("runs against an OpenAI-compatible endpoint (stub server over HTTP): real tokens, not simulated", async () => {
    const truth: Record<string, number> = {
      "What is 2 + 3?": 5,
      "What is 4 * 5?": 20,
      "What is 10 - 7?": 3,
    };
    const firstDraft: Record<string, number> = {
      "What is 2 + 3?": 6,
      "What is 4 * 5?": 20,
      "What is 10 - 7?": 3,
    };
    const items = Object.entries(truth).map(([task, reference], i) => ({
      id: `s${i + 1}`,
      task,
      reference,
      verifiers: [{ kind: "regex", mustMatch: ["^Answer: -?\\d+$"], flags: "m" }],
    }));
    const dataset = writeDataset(dir, "stubbed", items);
    const stub = await startOpenAIStub();
    const roles: string[] = [];
    const usage = { prompt_tokens: 100, completion_tokens: 20 };
    stub.setHandler((body: ChatRequestBody) => {
      const role = roleOf(body);
      roles.push(role);
      const user = String(body.messages?.at(-1)?.content ?? "");
      const task = /Task:\n(.+)/.exec(user)?.[1]?.trim() ?? "";
      const right = truth[task];
      if (role === "generate")
        return { content: `Working it out.\nAnswer: ${firstDraft[task]}`, usage };
      if (role === "critique") {
        const given = Number(/Answer: (-?\d+)/.exec(user.slice(user.indexOf("Draft:")))?.[1]);
        return {
          content:
            given === right
              ? '{"verdict":"pass","score":0.95,"issues":[]}'
              : `{"verdict":"revise","score":0.2,"issues":["the answer ${given} is wrong"]}`,
          usage,
        };
      }
      return { content: `Rechecked.\nAnswer: ${right}`, usage };
    });
    try {
      const out = join(dir, "stub-out");
      // In-process (the bin is covered above): the same entry point, real HTTP to the stub.
      const r = await inProcess(
        [
          "eval",
          "--dataset",
          dataset,
          "--strategies",
          "vanilla,self-refine,proactive",
          "--out",
          out,
        ],
        { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: stub.url, REFINERY_MODEL: "stub-model" },
      );
      expect(r.stderr).not.toMatch(/refinery:/);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/model stub-model at http:\/\/127\.0\.0\.1/);
      expect(r.stdout).not.toMatch(/SIMULATED/);
      expect(stub.requests.every((b) => b.model === "stub-model")).toBe(true);
      expect(roles).not.toContain("unknown");

      const summary = JSON.parse(readFileSync(join(out, "stubbed.summary.json"), "utf8"));
      expect(summary).toMatchObject({ label: "model", simulated: false });
      const records = readRecords(join(out, "stubbed.records.jsonl"));
      expect(records).toHaveLength(9);
      // Every call is counted, with the usage the endpoint reported.
      for (const rec of records) {
        expect(rec.simulated).toBe(false);
        expect(rec.tokens).toEqual({
          prompt: 100 * rec.calls,
          completion: 20 * rec.calls,
          total: 120 * rec.calls,
        });
      }
      expect(records.reduce((n, rec) => n + rec.calls, 0)).toBe(stub.requests.length);
      const by = (s: string, id: string) =>
        records.find((x) => x.strategy === s && x.item_id === id);
      expect(by("vanilla", "s1")).toMatchObject({
        first_correct: false,
        final_correct: false,
        calls: 1,
      });
      expect(by("self-refine", "s1")).toMatchObject({
        first_correct: false,
        final_correct: true,
        refinements: 1,
        calls: 4, // generate, critique, revise, critique
        stop_reason: "accepted",
      });
      expect(by("self-refine", "s2")).toMatchObject({
        first_correct: true,
        final_correct: true,
        calls: 2,
      });
      const [vanilla, selfRefine] = summary.strategies;
      expect(vanilla).toMatchObject({ items: 3, correct: 2, rescued: 0, harmed: 0 });
      expect(selfRefine).toMatchObject({
        items: 3,
        correct: 3,
        rescued: 1,
        first_wrong: 1,
        rescue_rate: 1,
        harm_rate: 0,
      });
      expect(selfRefine.tokens.total).toBe(120 * (4 + 2 + 2));
    } finally {
      await stub.close();
    }
  });
});

/** Which node a request comes from, by its system prompt (the default templates). */
function roleOf(body: ChatRequestBody): string {
  const system = String(body.messages?.[0]?.content ?? "");
  const names: PromptName[] = [
    "generate",
    "critique",
    "critiqueTargeted",
    "localize",
    "revise",
    "reviseTargeted",
    "judge",
  ];
  const critic: PromptName[] = ["critiqueTargeted", "localize"];
  for (const name of names)
    if (system === DEFAULT_PROMPTS[name].system) return critic.includes(name) ? "critique" : name;
  return "unknown";
}
