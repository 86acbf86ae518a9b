// The harness end to end on the offline simulated model (fixed seed, small dataset): the summary
// equals what the per-item records say, runs never see the reference, results are reproducible,
// and an interrupted or partial evaluation resumes with every item evaluated exactly once.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { processSettingsFromEnv } from "../../core/config.ts";
import type { Strategy } from "../../core/state.ts";
import { openEngine } from "../../graphs/engine.ts";
import {
  engineRunner,
  fileSink,
  loadDataset,
  runEvaluation,
  summarize,
  type ItemRecord,
  type RefineRunner,
} from "../../graphs/eval/index.ts";
import { SMALL_ITEMS, writeDataset } from "./fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-eval-"));
const engine = openEngine({ settings: processSettingsFromEnv({}), memory: true });
afterAll(() => {
  engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const STRATS: Strategy[] = ["vanilla", "self-refine", "proactive"];
const readRecords = (path: string): ItemRecord[] =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as ItemRecord);

function evaluate(name: string, extra: Partial<Parameters<typeof runEvaluation>[0]> = {}) {
  const dataset = loadDataset(join(dir, `${name}.jsonl`));
  const records = join(dir, `${name}.records.jsonl`);
  return {
    records,
    run: () =>
      runEvaluation({
        datasets: [dataset],
        strategies: STRATS,
        runner: engineRunner(engine),
        sink: fileSink(records),
        model: { kind: "simulated", seed: 7 },
        concurrency: 3,
        ...extra,
      }),
  };
}

describe("evaluation on the simulated model", () => {
  it("reports counts that equal the per-item records, labelled simulated", async () => {
    writeDataset(dir, "small");
    const { records: path, run } = evaluate("small");
    const { summary, records } = await run();
    const onDisk = readRecords(path);
    expect(onDisk).toHaveLength(SMALL_ITEMS.length * STRATS.length);
    expect(records).toHaveLength(onDisk.length);
    expect(summary).toMatchObject({ label: "simulated", simulated: true, status: "complete" });
    expect(summary.notice).toMatch(/simulated/);

    for (const s of summary.strategies) {
      const mine = onDisk.filter((r) => r.strategy === s.strategy);
      const firstRight = mine.filter((r) => r.first_correct);
      const firstWrong = mine.filter((r) => !r.first_correct);
      const total = mine.reduce((n, r) => n + r.tokens.total, 0);
      expect(s.items).toBe(SMALL_ITEMS.length);
      expect(s.correct).toBe(mine.filter((r) => r.final_correct).length);
      expect(s.accuracy).toBeCloseTo(s.correct / s.items);
      expect(s.tokens.total).toBe(total);
      expect(s.tokens_per_item).toBeCloseTo(total / s.items);
      expect(s.tokens.prompt + s.tokens.completion).toBe(total);
      expect(s.calls).toBe(mine.reduce((n, r) => n + r.calls, 0));
      expect(s.refinements).toBe(mine.reduce((n, r) => n + r.refinements, 0));
      expect(s.wall_ms).toBe(mine.reduce((n, r) => n + r.wall_ms, 0));
      expect(s.rescued).toBe(firstWrong.filter((r) => r.final_correct).length);
      expect(s.harmed).toBe(firstRight.filter((r) => !r.final_correct).length);
      expect(s.rescue_rate).toBe(firstWrong.length ? s.rescued / firstWrong.length : null);
      expect(s.harm_rate).toBe(firstRight.length ? s.harmed / firstRight.length : null);
      expect(Object.values(s.stop_reasons).reduce((a, b) => a + b, 0)).toBe(s.items);
      expect(summarize(s.strategy, onDisk)).toEqual(s);
      for (const r of mine) {
        expect(r.simulated).toBe(true);
        expect(r.tokens.total).toBeGreaterThan(0);
        expect(Object.values(r.tokens_by_node).reduce((a, b) => a + b, 0)).toBe(r.tokens.total);
      }
    }
    // Vanilla is one call, one draft: its first draft is its answer.
    for (const r of onDisk.filter((x) => x.strategy === "vanilla")) {
      expect(r).toMatchObject({ calls: 1, refinements: 0, stop_reason: "single_pass" });
      expect(r.final_correct).toBe(r.first_correct);
    }
    // Every strategy starts from the same first draft (same prompt, same seed).
    for (const item of SMALL_ITEMS) {
      const firsts = onDisk.filter((r) => r.item_id === item.id).map((r) => r.first_correct);
      expect(new Set(firsts).size).toBe(1);
    }
    // The simulated first drafts are wrong often enough to exercise refinement at all.
    expect(onDisk.some((r) => !r.first_correct)).toBe(true);
  });

  it("is reproducible with the same seed, and the seed matters", async () => {
    // Everything but the timing, the config hash and the dataset's name must be identical.
    const strip = (rs: ItemRecord[]) =>
      rs
        .map(({ wall_ms: _w, config: _c, dataset: _d, ...r }) => r)
        .sort((a, b) => `${a.strategy}/${a.item_id}`.localeCompare(`${b.strategy}/${b.item_id}`));
    writeDataset(dir, "again");
    const first = readRecords(evaluate("small").records);
    const { records } = await evaluate("again").run();
    expect(strip(records)).toEqual(strip(first));
    writeDataset(dir, "seeded");
    const other = await evaluate("seeded", {
      model: { kind: "simulated", seed: 8 },
      strategies: ["vanilla"],
    }).run();
    expect(strip(other.records)).not.toEqual(strip(first.filter((r) => r.strategy === "vanilla")));
  });

  it("never gives the run the reference or the grading check", async () => {
    const seen: unknown[] = [];
    const inner = engineRunner(engine);
    const spy: RefineRunner = {
      validate: inner.validate,
      run: (input, threadId, signal) => {
        seen.push(input.options.verifiers);
        return inner.run(input, threadId, signal);
      },
    };
    writeDataset(dir, "spy");
    await evaluate("spy", { runner: spy, strategies: ["self-refine"] }).run();
    expect(seen).toHaveLength(SMALL_ITEMS.length);
    seen.forEach((verifiers, i) => {
      expect(verifiers).toEqual(SMALL_ITEMS[i]?.verifiers ?? []);
      expect(JSON.stringify(verifiers)).not.toMatch(/answer_match|"expected"/);
    });
  });

  it("resumes after --limit: every item is evaluated exactly once", async () => {
    writeDataset(dir, "resume");
    const partial = await evaluate("resume", { limit: 3 }).run();
    expect(partial.summary.items).toBe(3);
    expect(partial.summary.evaluated).toBe(3 * STRATS.length);
    const { records: path, run } = evaluate("resume");
    const full = await run();
    expect(full.summary.skipped).toBe(3 * STRATS.length);
    expect(full.summary.evaluated).toBe((SMALL_ITEMS.length - 3) * STRATS.length);
    const keys = readRecords(path).map((r) => `${r.strategy}/${r.item_id}`);
    expect(keys).toHaveLength(SMALL_ITEMS.length * STRATS.length);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("resumes after an interruption, and repairs a record cut short by a crash", async () => {
    writeDataset(dir, "abort");
    const abort = new AbortController();
    let finished = 0;
    const { records: path, run } = evaluate("abort", {
      signal: abort.signal,
      concurrency: 2,
      onProgress: (p) => {
        if (p.last && ++finished === 5) abort.abort();
      },
    });
    const stopped = await run();
    expect(stopped.summary.status).toBe("interrupted");
    const before = readRecords(path);
    expect(before.length).toBeGreaterThanOrEqual(5);
    expect(before.length).toBeLessThan(SMALL_ITEMS.length * STRATS.length);
    // A crash in the middle of an append leaves half a line behind.
    writeFileSync(path, `${readFileSync(path, "utf8")}{"config": "abc", "strat`);

    const again = await evaluate("abort").run();
    expect(again.summary.status).toBe("complete");
    expect(again.summary.skipped).toBe(before.length);
    const after = readRecords(path);
    const keys = after.map((r) => `${r.strategy}/${r.item_id}`);
    expect(keys).toHaveLength(SMALL_ITEMS.length * STRATS.length);
    expect(new Set(keys).size).toBe(keys.length);
    expect(after.slice(0, before.length)).toEqual(before);
  });

  it("refuses to mix records from another configuration", async () => {
    writeDataset(dir, "mixed");
    await evaluate("mixed", { limit: 1, strategies: ["vanilla"] }).run();
    await expect(
      evaluate("mixed", { limit: 1, strategies: ["vanilla"], maxIterations: 2 }).run(),
    ).rejects.toThrow(/different configuration/);
    // Another strategy in the same file is fine.
    await expect(
      evaluate("mixed", { limit: 1, strategies: ["self-refine"], maxIterations: 2 }).run(),
    ).resolves.toBeDefined();
  });
});
