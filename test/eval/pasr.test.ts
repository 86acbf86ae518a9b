// `refinery eval --strategies pasr` against the OpenAI-compatible stub over HTTP: each record
// counts the refine segments written inside the generation and whether the output was malformed
// (the run fell back to proactive); the summary and the table add them up.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { PASR_SYSTEM_PROMPT } from "../../core/pasr.ts";
import { DEFAULT_PROMPTS } from "../../core/prompts.ts";
import type { ItemRecord } from "../../graphs/eval/index.ts";
import { startOpenAIStub, type ChatRequestBody, type StubReply } from "../support/openai-stub.ts";
import { writeDataset } from "./fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-eval-pasr-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the PASR model sends per task: reasoning apart, a template-opened think, a malformed reply. */
const REPLIES: Record<string, StubReply> = {
  "What is 2 + 3?": {
    reasoning: "2 + 3 = 6<refine>2 + 3 = 5</refine>, checked<refine>yes, 5</refine>",
    content: "<answer>\\boxed{5}</answer>",
  },
  "What is 4 * 5?": { content: "4 * 5 = 20</think><answer>20</answer>" },
  "What is 10 - 7?": { content: "<think>10 - 7 = 2<refine>10 - 7 = 3</refine>\nAnswer: 3" },
};

describe("refinery eval: PASR counts", () => {
  it("records in-generation refinements and fallbacks per item, and sums them in the report", async () => {
    const references = [5, 20, 3];
    const items = Object.keys(REPLIES).map((task, i) => ({
      id: `p${i + 1}`,
      task,
      reference: references[i],
    }));
    const dataset = writeDataset(dir, "pasr", items);
    const stub = await startOpenAIStub();
    const other: string[] = [];
    stub.setHandler((body: ChatRequestBody) => {
      const system = String(body.messages?.[0]?.content ?? "");
      const task = /Task:\n(.+)/.exec(String(body.messages?.at(-1)?.content ?? ""))?.[1]?.trim();
      if (system === PASR_SYSTEM_PROMPT && task && REPLIES[task]) return REPLIES[task];
      other.push(system === DEFAULT_PROMPTS.generate.system ? "generate" : "critique/revise");
      return { content: '{"verdict":"pass","score":0.9,"issues":[]}' };
    });
    try {
      const out = join(dir, "out");
      let stdout = "";
      let stderr = "";
      const code = await main(
        ["eval", "--dataset", dataset, "--strategies", "pasr", "--out", out],
        {
          stdout: { write: (t: string) => void (stdout += t) },
          stderr: { write: (t: string) => void (stderr += t) },
          env: {
            OPENAI_API_KEY: "test-key",
            OPENAI_BASE_URL: stub.url,
            REFINERY_MODEL: "stub-model",
          },
        },
      );
      expect(stderr).not.toMatch(/refinery:/);
      expect(code).toBe(0);

      const records = readFileSync(join(out, "pasr.records.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as ItemRecord);
      const by = (id: string) => records.find((r) => r.item_id === id);
      expect(by("p1")).toMatchObject({
        in_generation_refinements: 2,
        pasr_fallback: false,
        first_correct: true,
        final_correct: true,
      });
      expect(by("p2")).toMatchObject({ in_generation_refinements: 0, pasr_fallback: false });
      expect(by("p3")).toMatchObject({
        in_generation_refinements: 1,
        pasr_fallback: true,
        final_correct: true,
      });
      // The generation that fell back never asked for a plain draft again.
      expect(other).not.toContain("generate");

      const summary = JSON.parse(readFileSync(join(out, "pasr.summary.json"), "utf8"));
      expect(summary.strategies[0]).toMatchObject({
        strategy: "pasr",
        pasr_items: 3,
        in_generation_refinements: 3,
        pasr_fallbacks: 1,
      });
      expect(stdout).toContain(
        "pasr: 3 in-generation refinement(s) over 3 generation(s) (1.00/item); 1 malformed, fell back to proactive (33.3%)",
      );
    } finally {
      await stub.close();
    }
  });
});
