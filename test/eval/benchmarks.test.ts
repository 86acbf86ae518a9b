// Loaders of the standard benchmarks' public file formats, on the format samples shipped in
// datasets/samples: the format is named or recognised, prompts and grading checks are built,
// the benchmark's own solution passes its grader, and bad records are named by line and field.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isRefineryError } from "../../core/errors.ts";
import { runVerifiers } from "../../core/verifiers/index.ts";
import { graderFor, loadDataset, type DatasetItem } from "../../graphs/eval/index.ts";

const SAMPLES = join(import.meta.dirname, "../../datasets/samples");
const sample = (name: string) => join(SAMPLES, name);
const dir = mkdtempSync(join(tmpdir(), "refinery-benchmarks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const passes = async (item: DatasetItem, reply: string) =>
  (await runVerifiers(graderFor(item), reply, { task: item.task, iteration: 0 })).every(
    (v) => v.pass,
  );

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isRefineryError(err)) return err.toLine();
    throw err;
  }
  throw new Error("expected an error");
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("benchmark loaders on the shipped format samples", () => {
  it("GSM8K: the number after ####, commas removed; the dataset's own solution passes", async () => {
    const d = loadDataset(sample("gsm8k-sample.jsonl"));
    expect(d.name).toBe("gsm8k-sample");
    expect(d.items.map((i) => i.reference)).toEqual([61, 35, 148, 63]);
    expect(d.items[0]?.grade).toMatchObject({
      kind: "answer_match",
      mode: "numeric",
      expected: 61,
    });
    const rows = readFileSync(sample("gsm8k-sample.jsonl"), "utf8").trim().split("\n");
    for (const [k, item] of d.items.entries()) {
      const solution = (JSON.parse(rows[k] as string) as { answer: string }).answer;
      expect(await passes(item, solution)).toBe(true);
    }
    expect(await passes(d.items[0]!, "So the total is 60.\nAnswer: 60")).toBe(false);
    // The same file named explicitly.
    expect(loadDataset(`gsm8k:${sample("gsm8k-sample.jsonl")}`).items).toHaveLength(4);
  });

  it("MATH/MATH-500: the answer field or the solution's last \\boxed{}, graded by equivalence", async () => {
    const d = loadDataset(sample("math-sample.jsonl"));
    expect(d.items.map((i) => i.id)).toContain("sample/algebra/3.json");
    expect(d.items.map((i) => i.reference)).toEqual([
      "\\frac{1}{2}",
      "2\\sqrt{2}",
      "5",
      "(1,2)",
      "[4,\\infty)",
      "x^2+2x+1",
    ]);
    expect(d.items[0]?.task).toMatch(/Put the final answer in \\boxed\{\}\.$/);
    const replies = [
      "\\boxed{0.5}",
      "\\boxed{\\sqrt{8}}",
      "\\boxed{x = 5}",
      "\\boxed{\\left(1, 2\\right)}",
      "\\boxed{\\left[4,\\infty\\right)}",
      "\\boxed{(x+1)^2}",
    ];
    for (const [k, item] of d.items.entries())
      expect(await passes(item, `Work.\n${replies[k]}`)).toBe(true);
    expect(await passes(d.items[1]!, "\\boxed{2\\sqrt{3}}")).toBe(false);
  });

  it("ARC: nested question with labelled choices; numeric labels stay labels", async () => {
    const d = loadDataset(sample("arc-sample.jsonl"));
    expect(d.items.map((i) => [i.id, i.reference])).toEqual([
      ["sample-arc-1", "C"],
      ["sample-arc-2", "A"],
      ["sample-arc-3", "2"],
    ]);
    expect(d.items[0]?.task).toMatch(
      /\nA\. the Moon\nB\. a mirror\nC\. a candle flame\nD\. a white wall\n\nAnswer with the letter/,
    );
    expect(d.items[2]?.task).toMatch(/Answer with the label of the correct option/);
    expect(await passes(d.items[0]!, "A candle burns.\nAnswer: (C)")).toBe(true);
    expect(await passes(d.items[2]!, "Answer: 2")).toBe(true);
    expect(await passes(d.items[2]!, "Answer: 3")).toBe(false);
  });

  it("ARC in the Hugging Face layout (choices as label and text lists) reads the same", async () => {
    const path = write(
      "arc-hf.jsonl",
      `${JSON.stringify({ id: "hf-1", question: "Which is a liquid at room temperature?", choices: { text: ["iron", "water", "salt"], label: ["A", "B", "C"] }, answerKey: "B" })}\n`,
    );
    const [item] = loadDataset(path).items;
    expect(item?.task).toMatch(
      /^Which is a liquid at room temperature\?\n\nA\. iron\nB\. water\nC\. salt\n/,
    );
    expect(await passes(item!, "Water flows.\nAnswer: B")).toBe(true);
    expect(await passes(item!, "Answer: water")).toBe(true);
  });

  it("MMLU: CSV rows question,A,B,C,D,answer and JSONL with an index or a letter", async () => {
    const csv = loadDataset(sample("mmlu-sample.csv"));
    expect(csv.items.map((i) => i.reference)).toEqual(["B", "C", "B"]);
    // A quoted field keeps its comma.
    expect(csv.items[1]?.task).toMatch(/D\. none of these, all are composite/);
    const jsonl = loadDataset(sample("mmlu-sample.jsonl"));
    expect(jsonl.items.map((i) => i.reference)).toEqual(["B", "B", "B"]);
    expect(jsonl.items[0]?.task).toMatch(/^\(astronomy\) Which planet/);
    expect(await passes(jsonl.items[0]!, "Mercury is closest.\nAnswer: B")).toBe(true);
    expect(await passes(jsonl.items[0]!, "Answer: Mercury")).toBe(true);
    expect(await passes(jsonl.items[0]!, "Answer: A")).toBe(false);
  });

  it("open QA: SQuAD JSON (unanswerable questions skipped) and Hugging Face JSONL; every gold answer counts", async () => {
    const squad = loadDataset(sample("squad-sample.json"));
    expect(squad.items.map((i) => i.id)).toEqual(["sample-squad-1", "sample-squad-2"]);
    expect(squad.items[0]?.context).toMatch(/^The harbour lighthouse/);
    expect(squad.items[0]?.grade).toMatchObject({
      mode: "qa",
      expected: "1959",
      alternatives: ["in 1959"],
    });
    expect(await passes(squad.items[0]!, "Answer: In 1959.")).toBe(true);
    expect(await passes(squad.items[1]!, "Answer: the local granite")).toBe(true);
    const hf = loadDataset(sample("qa-sample.jsonl"));
    expect(hf.items.map((i) => i.reference)).toEqual(["Ardley", "212 kilometres"]);
    expect(await passes(hf.items[1]!, "Answer: 212 km")).toBe(false);
  });

  it("the datasets' hashes are the files' sha256", async () => {
    const { createHash } = await import("node:crypto");
    for (const f of ["gsm8k-sample.jsonl", "mmlu-sample.csv", "squad-sample.json"]) {
      const bytes = readFileSync(sample(f), "utf8");
      expect(loadDataset(sample(f)).sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
  });
});

describe("benchmark loader errors name the line, the field and the fix", () => {
  it.each([
    [
      "gsm8k without ####",
      "g.jsonl",
      `{"question": "q", "answer": "#### 3"}\n{"question": "q2", "answer": "no marker"}`,
      "gsm8k:",
      /g\.jsonl line 2: answer: no "#### <number>" line/,
    ],
    [
      "MATH without an answer",
      "m.jsonl",
      `{"problem": "p", "solution": "no box"}`,
      "",
      /m\.jsonl line 1: solution: no answer: neither an answer field nor a \\boxed\{\}/,
    ],
    [
      "ARC answerKey not a label",
      "a.jsonl",
      `{"id": "x", "question": {"stem": "s", "choices": [{"label": "A", "text": "1"}, {"label": "B", "text": "2"}]}, "answerKey": "E"}`,
      "",
      /a\.jsonl line 1: answerKey: answer "E" is not one of the labels A, B/,
    ],
    [
      "MMLU answer out of range",
      "u.jsonl",
      `{"question": "q", "choices": ["a", "b"], "answer": 5}`,
      "",
      /u\.jsonl line 1: answer: answer 5 is neither a 0-based option index nor a letter A-B/,
    ],
    [
      "QA without answers",
      "q.jsonl",
      `{"question": "q", "answers": {"text": []}}`,
      "qa:",
      /q\.jsonl line 1: answers: no answer text/,
    ],
    [
      "unrecognised fields",
      "z.jsonl",
      `{"prompt": "p", "target": "t"}`,
      "",
      /cannot tell the format of .*z\.jsonl from its fields \(prompt, target\).*--dataset FORMAT:/,
    ],
    [
      "unknown format",
      "k.jsonl",
      `{"question": "q", "answer": "a"}`,
      "squad2:",
      /--dataset: unknown dataset format "squad2".*gsm8k, math, arc, mmlu, qa/,
    ],
    [
      "short CSV row",
      "c.csv",
      `q,A,B,C,D,A\nonly,two\n`,
      "",
      /c\.csv line 2: expected question, options and answer, got 2 column/,
    ],
    [
      "CSV as another format",
      "d.csv",
      `q,A,B,C,D,A\n`,
      "gsm8k:",
      /a CSV dataset is read as MMLU, not gsm8k/,
    ],
  ])("%s", (_name, file, text, prefix, message) => {
    const path = write(file, text);
    expect(errorOf(() => loadDataset(`${prefix}${path}`))).toMatch(message);
  });

  it("a named format checks every record against it", () => {
    const path = write("wrong.jsonl", `{"problem": "p", "answer": "1"}`);
    expect(errorOf(() => loadDataset(`gsm8k:${path}`))).toMatch(
      /wrong\.jsonl line 1: question: question must be a non-empty string/,
    );
  });
});
