// `refinery eval` against the OpenAI-compatible stub server over HTTP with the benchmark loaders:
// decoding parameters reach the endpoint, several models share one report, the papers' baselines
// behave as defined, the optional LLM judge grades apart, and --replay re-grades without a model.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { loadDataset, type ItemRecord } from "../../graphs/eval/index.ts";
import {
  roleOf,
  startOpenAIStub,
  type ChatRequestBody,
  type OpenAIStub,
} from "../support/openai-stub.ts";

const SAMPLES = join(import.meta.dirname, "../../datasets/samples");
const GSM8K = join(SAMPLES, "gsm8k-sample.jsonl");
const MATH = join(SAMPLES, "math-sample.jsonl");
const MMLU = join(SAMPLES, "mmlu-sample.csv");
const dir = mkdtempSync(join(tmpdir(), "refinery-eval-endpoint-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let stubs: OpenAIStub[] = [];
afterEach(async () => {
  await Promise.all(stubs.map((s) => s.close()));
  stubs = [];
});
async function stub(): Promise<OpenAIStub> {
  const s = await startOpenAIStub();
  stubs.push(s);
  return s;
}

async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: { write: (t: string) => void (stdout += t) },
    stderr: { write: (t: string) => void (stderr += t) },
    env,
  });
  return { code, stdout, stderr };
}

const envOf = (s: OpenAIStub) => ({
  OPENAI_API_KEY: "test-key",
  OPENAI_BASE_URL: s.url,
  REFINERY_MODEL: "stub-model",
});
const readRecords = (path: string): ItemRecord[] =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as ItemRecord);
const taskOf = (body: ChatRequestBody) =>
  /Task:\n([\s\S]+?)\n(?:\n|Previous draft|Context|$)/
    .exec(String(body.messages?.at(-1)?.content ?? ""))?.[1]
    ?.trim() ?? "";

/** The right reply of every sample item, keyed by the task's first line. */
function answerKey(paths: string[], reply: (reference: string) => string): Map<string, string> {
  const key = new Map<string, string>();
  for (const p of paths)
    for (const item of loadDataset(p).items)
      key.set(item.task.split("\n")[0] as string, reply(String(item.reference)));
  return key;
}

describe("refinery eval on an endpoint, with benchmark files", () => {
  it("sends the decoding parameters with every request and reports several models in one summary", async () => {
    const s = await stub();
    const right = answerKey([GSM8K, MMLU], (ref) => `Worked it out.\nAnswer: ${ref}`);
    // m-good answers right; m-bad answers "Answer: 0" to everything.
    s.setHandler((body) => {
      const first = taskOf(body).split("\n")[0] as string;
      return { content: body.model === "m-good" ? (right.get(first) ?? "?") : "Answer: 0" };
    });
    const out = join(dir, "decoding");
    const r = await cli(
      [
        "eval",
        "--dataset",
        `gsm8k:${GSM8K}`,
        "--dataset",
        MMLU,
        "--strategies",
        "vanilla",
        "--model",
        "m-good",
        "--model",
        "m-bad",
        "--temperature",
        "0.3",
        "--max-tokens",
        "256",
        "--model-seed",
        "7",
        "--n",
        "1",
        "--out",
        out,
      ],
      envOf(s),
    );
    expect(r.stderr).not.toMatch(/refinery:/);
    expect(r.code).toBe(0);
    expect(s.requests).toHaveLength(14); // 7 items x 2 models, one draft each
    for (const body of s.requests) {
      expect(body).toMatchObject({ temperature: 0.3, max_tokens: 256, seed: 7, n: 1 });
    }
    expect(s.requests.filter((b) => b.model === "m-good")).toHaveLength(7);
    expect(s.requests.filter((b) => b.model === "m-bad")).toHaveLength(7);
    expect(r.stdout).toMatch(
      /model m-good at http:\/\/127\.0\.0\.1:\d+\/v1 \(temperature 0\.3, maxTokens 256, seed 7, n 1\)/,
    );
    expect(r.stdout).toMatch(/model m-bad at/);

    const name = "gsm8k-sample+mmlu-sample";
    const report = JSON.parse(readFileSync(join(out, `${name}.summary.json`), "utf8"));
    expect(report.models.map((m: { model: { model: string } }) => m.model.model)).toEqual([
      "m-good",
      "m-bad",
    ]);
    const [good, bad] = report.models;
    expect(good.strategies[0]).toMatchObject({ strategy: "vanilla", items: 7, correct: 7 });
    expect(bad.strategies[0]).toMatchObject({ strategy: "vanilla", items: 7, correct: 0 });
    expect(good.model.decoding).toEqual({ temperature: 0.3, maxTokens: 256, seed: 7, n: 1 });
    // Reproducibility: dataset hashes, prompts (hash and text) and the code version.
    expect(good.datasets.map((d: { sha256: string }) => d.sha256)).toEqual([
      loadDataset(GSM8K).sha256,
      loadDataset(MMLU).sha256,
    ]);
    expect(good.provenance.prompts.vanilla.generate).toMatchObject({
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      system: expect.stringContaining("careful expert"),
    });
    expect(good.provenance.code.version).toMatch(/\d+\.\d+\.\d+/);
    expect(good.provenance.code.commit).toMatch(/^[0-9a-f]{40}$/);
    const goodRecords = readRecords(join(out, `${name}.m-good.records.jsonl`));
    expect(
      goodRecords.every((rec) => rec.final_correct && rec.final_answer?.startsWith("Worked")),
    ).toBe(true);
    expect(
      readRecords(join(out, `${name}.m-bad.records.jsonl`)).every((rec) => !rec.final_correct),
    ).toBe(true);
  });

  it("reads every shipped format through the CLI and grades each with its own check", async () => {
    const files = [
      "arc-sample.jsonl",
      "mmlu-sample.jsonl",
      "squad-sample.json",
      "qa-sample.jsonl",
      "math-sample.jsonl",
    ].map((f) => join(SAMPLES, f));
    const s = await stub();
    // Right answers written the way models write them, not as the reference string.
    const forms: Record<string, string> = {
      C: "The answer is (C).",
      A: "**A**",
      B: "Answer: B) ",
      "2": "Answer: 2",
    };
    const key = answerKey(files.slice(0, 4), (ref) => forms[ref] ?? `Answer: the ${ref}.`);
    for (const [task, reply] of answerKey([MATH], (ref) => `\\boxed{${ref}}`)) key.set(task, reply);
    key.set("Simplify $\\frac{6}{12}$.", "\\boxed{0.5}");
    key.set(
      "What is the length of the diagonal of a square with side length $2$?",
      "\\boxed{\\sqrt{8}}",
    );
    s.setHandler((body) => ({ content: key.get(taskOf(body).split("\n")[0] as string) ?? "?" }));
    const out = join(dir, "formats");
    const r = await cli(
      [
        "eval",
        ...files.flatMap((f) => ["--dataset", f]),
        "--strategies",
        "vanilla",
        "--json",
        "--out",
        out,
      ],
      envOf(s),
    );
    expect(r.stderr).not.toMatch(/refinery:/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.datasets.map((d: { name: string; items: number }) => [d.name, d.items])).toEqual(
      [
        ["arc-sample", 3],
        ["mmlu-sample", 3],
        ["squad-sample", 2],
        ["qa-sample", 2],
        ["math-sample", 6],
      ],
    );
    expect(summary.strategies[0]).toMatchObject({ items: 16, correct: 16 });
  });

  it("--strategy-model runs one strategy on another model of the endpoint", async () => {
    const s = await stub();
    s.setHandler((body) => {
      const role = roleOf(body);
      if (role === "critique") return { content: '{"verdict":"pass","score":0.95,"issues":[]}' };
      return { content: "Answer: 61" };
    });
    const out = join(dir, "per-strategy");
    const r = await cli(
      [
        "eval",
        "--dataset",
        GSM8K,
        "--strategies",
        "vanilla,self-refine",
        "--strategy-model",
        "self-refine=big-m",
        "--limit",
        "1",
        "--concurrency",
        "1",
        "--out",
        out,
      ],
      envOf(s),
    );
    expect(r.stderr).not.toMatch(/refinery:/);
    expect(r.code).toBe(0);
    // Item-major, one at a time: vanilla's one call, then self-refine's generate and critique.
    expect(s.requests.map((b) => b.model)).toEqual(["stub-model", "big-m", "big-m"]);
    expect(r.stdout).toMatch(/model stub-model at .*; self-refine on big-m/);
    const summary = JSON.parse(readFileSync(join(out, "gsm8k-sample.summary.json"), "utf8"));
    expect(summary.model.per_strategy).toEqual({ "self-refine": "big-m" });

    const bad = await cli(
      [
        "eval",
        "--dataset",
        GSM8K,
        "--strategies",
        "vanilla",
        "--strategy-model",
        "proactive=x",
        "--out",
        out,
      ],
      envOf(s),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--strategy-model: strategy "proactive" is not evaluated here.*name one of the --strategies \(vanilla\)/,
    );
  });

  it("self-refine-1 stops after one round; self-refine+ is told only that a wrong answer is wrong", async () => {
    const s = await stub();
    const reply = answerKey([MATH], (ref) => `So the answer is $\\boxed{${ref}}$.`);
    s.setHandler((body) => {
      const role = roleOf(body);
      const first = taskOf(body).split("\n")[0] as string;
      if (role === "critique")
        return { content: '{"verdict":"revise","score":0.3,"issues":["step 2 may be wrong"]}' };
      // First drafts of the diagonal question are wrong (2\sqrt{3}); revisions are right.
      if (role === "generate" && first.startsWith("What is the length of the diagonal"))
        return { content: "The answer is $\\boxed{2\\sqrt{3}}$." };
      return { content: reply.get(first) ?? "?" };
    });
    const out = join(dir, "baselines");
    const r = await cli(
      ["eval", "--dataset", MATH, "--strategies", "self-refine-1,self-refine+", "--out", out],
      envOf(s),
    );
    expect(r.stderr).not.toMatch(/refinery:/);
    expect(r.code).toBe(0);
    const records = readRecords(join(out, "math-sample.records.jsonl"));
    const by = (strategy: string, id: string) =>
      records.find((x) => x.strategy === strategy && x.item_id === id);
    // One round: at most one revision, whatever the critic says.
    for (const rec of records.filter((x) => x.strategy === "self-refine-1")) {
      expect(rec.refinements).toBeLessThanOrEqual(1);
      expect(rec.calls).toBeLessThanOrEqual(4); // generate, critique, revise, critique
    }
    // Self-Refine+: a right first draft is kept (no critique, no revision)...
    expect(by("self-refine+", "sample/prealgebra/1.json")).toMatchObject({
      calls: 1,
      refinements: 0,
      final_correct: true,
    });
    // ...a wrong one is revised once, told it is wrong but not what is right.
    expect(by("self-refine+", "sample/geometry/2.json")).toMatchObject({
      first_correct: false,
      final_correct: true,
      refinements: 1,
      calls: 2,
    });
    const revise = s.requests.filter((b) => roleOf(b) === "revise");
    const told = revise.map((b) => String(b.messages?.at(-1)?.content));
    expect(told.some((t) => /final answer "2\\\\sqrt\{3\}" is not correct/.test(t))).toBe(true);
    expect(
      told.filter((t) => t.includes("is not correct")).some((t) => t.includes("2\\sqrt{2}")),
    ).toBe(false);
    // Self-Refine+ asks no critic: the oracle's check is its only feedback.
    for (const rec of records.filter((x) => x.strategy === "self-refine+"))
      expect(rec.critiques).toBe(0);
  });

  it("--judge-model grades every answer a second time, apart and marked, with the reference in the rubric", async () => {
    const s = await stub();
    const judged: string[] = [];
    s.setHandler((body) => {
      if (body.model === "judge-m") {
        const prompt = String(body.messages?.at(-1)?.content ?? "");
        judged.push(prompt);
        const reference = /Reference answer:\n(.+)/.exec(prompt)?.[1]?.trim();
        const draft = prompt.slice(prompt.indexOf("Draft:"));
        const ok = reference !== undefined && draft.includes(`Answer: ${reference}`);
        return {
          content: JSON.stringify({ score: ok ? 1 : 0, reason: ok ? "same" : "differs" }),
          usage: { prompt_tokens: 50, completion_tokens: 5 },
        };
      }
      return { content: "Answer: 61", usage: { prompt_tokens: 10, completion_tokens: 2 } };
    });
    const out = join(dir, "judge");
    const r = await cli(
      [
        "eval",
        "--dataset",
        GSM8K,
        "--strategies",
        "vanilla",
        "--judge-model",
        "judge-m",
        "--out",
        out,
      ],
      envOf(s),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /LLM-JUDGE GRADED by judge-m: a second grade by a model, not deterministic/,
    );
    expect(judged).toHaveLength(4); // first draft = final answer: judged once per item
    expect(judged.filter((p) => /Reference answer:\n61\n/.test(p))).toHaveLength(1);
    const summary = JSON.parse(readFileSync(join(out, "gsm8k-sample.summary.json"), "utf8"));
    expect(summary.judge.model).toMatchObject({ model: "judge-m" });
    expect(summary.judge.strategies[0]).toMatchObject({
      strategy: "vanilla",
      items: 4,
      correct: 1,
      disagreements: 0,
      errors: 0,
      tokens: 4 * 55,
    });
    expect(summary.provenance.prompts["llm-judge"].judge.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The strategy's tokens are its own; the judge's are the grading's.
    expect(summary.strategies[0].tokens.total).toBe(4 * 12);
    const records = readRecords(join(out, "gsm8k-sample.records.jsonl"));
    expect(records.filter((x) => x.judge?.final_pass).map((x) => x.item_id)).toEqual(["line-1"]);
  });

  it("--replay re-grades the recorded answers and never calls the model", async () => {
    const s = await stub();
    s.setHandler(() => ({ content: "Answer: 61" }));
    const out = join(dir, "replay");
    expect(
      (await cli(["eval", "--dataset", GSM8K, "--strategies", "vanilla", "--out", out], envOf(s)))
        .code,
    ).toBe(0);
    const path = join(out, "gsm8k-sample.records.jsonl");
    // Tamper with a verdict: replay grades the text again and reports the difference.
    const records = readRecords(path);
    records[0] = { ...records[0]!, final_correct: false };
    writeFileSync(path, records.map((x) => `${JSON.stringify(x)}\n`).join(""));

    const silent = await stub();
    silent.setHandler(() => {
      throw new Error("the model must not be called during a replay");
    });
    const r = await cli(
      ["eval", "--replay", path, "--dataset", GSM8K, "--out", join(dir, "replayed")],
      envOf(silent),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(silent.requests).toHaveLength(0);
    expect(r.stdout).toMatch(
      /REPLAY of .*gsm8k-sample\.records\.jsonl: the recorded answers graded again, no model called/,
    );
    expect(r.stdout).toMatch(/1 of 4 record\(s\) graded differently than when recorded/);
    const summary = JSON.parse(
      readFileSync(join(dir, "replayed", "gsm8k-sample.replay.summary.json"), "utf8"),
    );
    expect(summary.strategies[0]).toMatchObject({ strategy: "vanilla", items: 4, correct: 1 });
    expect(summary.replay).toEqual({ source: path, changed: 1 });

    const missing = await cli(
      ["eval", "--replay", path, "--dataset", MATH, "--out", join(dir, "replayed")],
      envOf(silent),
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /record 1 \(vanilla gsm8k-sample\/line-1\).*no item "line-1" in a dataset named "gsm8k-sample"/,
    );
    expect(silent.requests).toHaveLength(0);
  });

  it.each([
    [["--temperature", "3"], /--temperature: expected a number from 0 to 2, got "3"/],
    [["--n", "0"], /--n: expected an integer from 1 to 16/],
    [["--judge-rubric", "r"], /--judge-rubric: --judge-rubric needs --judge-model/],
    [
      ["--strategies", "self-refine++"],
      /--strategies: unknown strategy "self-refine\+\+".*self-refine-1, self-refine\+/,
    ],
  ])("refuses %j with a one-line error naming the flag", async (extra, message) => {
    const s = await stub();
    const r = await cli(
      ["eval", "--dataset", GSM8K, ...extra, "--out", join(dir, "errors")],
      envOf(s),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(s.requests).toHaveLength(0);
  });

  it("refuses endpoint options on the simulated model", async () => {
    const r = await cli([
      "eval",
      "--dataset",
      GSM8K,
      "--offline",
      "--model",
      "x",
      "--out",
      join(dir, "errors"),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--model: --model needs a real model endpoint/);
  });
});
