// The pasr strategy offline: the simulated model answers the PASR prompt in PASR format, the
// generate node parses it (no fallback), and an evaluation records pasr like any strategy.
import { afterAll, describe, expect, it } from "vitest";
import { processSettingsFromEnv } from "../../core/config.ts";
import { openEngine } from "../../graphs/engine.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineRunner, loadDataset, memorySink, runEvaluation } from "../../graphs/eval/index.ts";
import { writeDataset } from "./fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-eval-pasr-"));
const engine = openEngine({ settings: processSettingsFromEnv({}), memory: true });
afterAll(() => {
  engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const simulated = (options: Record<string, unknown>) => ({
  default: { provider: "simulated" as const, simulated: options },
});

describe("pasr on the simulated model", () => {
  it("a wrong start caught in-generation: one <refine> stored, the answer right, no fallback", async () => {
    const state = await engineRunner(engine).run(
      {
        task: "What is 17 * 23 + 4?",
        context: "",
        options: {
          strategy: "pasr",
          models: simulated({ seed: 3, firstDraftErrorRate: 1, pasrFixRate: 1 }),
          memory: { enabled: false },
        },
      },
      "pasr-offline-1",
    );
    expect(state.strategy).toBe("pasr");
    expect(state.refinements).toHaveLength(1);
    expect(state.decisions.some((d) => d.action === "fallback")).toBe(false);
    expect(state.drafts[0]?.text).toMatch(/^Revised.*\n[\s\S]*Answer: 395$/);
  });

  it("malformed PASR output falls back to proactive", async () => {
    const state = await engineRunner(engine).run(
      {
        task: "What is 17 * 23 + 4?",
        context: "",
        options: {
          strategy: "pasr",
          models: simulated({ seed: 3, pasrFormatErrorRate: 1 }),
          memory: { enabled: false },
        },
      },
      "pasr-offline-2",
    );
    expect(state.strategy).toBe("proactive");
    expect(state.decisions.some((d) => d.action === "fallback")).toBe(true);
  });

  it("an evaluation runs pasr offline next to self-refine", async () => {
    const dataset = loadDataset(
      writeDataset(dir, "tiny", [
        { id: "c1", task: "What is 17 * 23 + 4?", reference: 395 },
        { id: "c2", task: "Compute 12 * (3 + 4) - 5.", reference: 79 },
      ]),
    );
    const { records } = await runEvaluation({
      datasets: [dataset],
      strategies: ["self-refine", "pasr"],
      runner: engineRunner(engine),
      sink: memorySink(),
      model: { kind: "simulated", seed: 5, options: { firstDraftErrorRate: 1, pasrFixRate: 1 } },
    });
    const pasr = records.filter((r) => r.strategy === "pasr");
    expect(pasr).toHaveLength(2);
    // Every start is wrong and every one is caught in-generation: the first draft is right.
    expect(pasr.every((r) => r.first_correct)).toBe(true);
    expect(records.filter((r) => r.strategy === "self-refine").every((r) => !r.first_correct)).toBe(
      true,
    );
  });
});
