// Dataset validation: every problem names the file, the line and the field, and the grading
// check defaults to the reference (numeric, exact, or every field of an object).
import { describe, expect, it } from "vitest";
import { isRefineryError } from "../../core/errors.ts";
import {
  defaultGrade,
  graderFor,
  loadDataset,
  parseDataset,
  parseDatasetItems,
} from "../../graphs/eval/dataset.ts";
import { runVerifiers } from "../../core/verifiers/index.ts";

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isRefineryError(err)) return err.toLine();
    throw err;
  }
  throw new Error("expected an error");
}

const ok = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ task: "What is 2 + 3?", reference: 5, ...extra });

describe("dataset validation", () => {
  it.each([
    ["not JSON", `${ok()}\n{"task": "x", `, /data\.jsonl line 2: not valid JSON/],
    ["missing task", `${ok()}\n{"reference": 1}`, /line 2: task: task must be a string/],
    ["empty task", `{"task": "  ", "reference": 1}`, /line 1: task: task must not be empty/],
    ["missing reference", `{"task": "x"}`, /line 1: reference: reference must be a number/],
    ["array reference", `{"task": "x", "reference": [1]}`, /line 1: reference:/],
    [
      "unknown field",
      `{"task": "x", "reference": 1, "answer": 1}`,
      /line 1: answer: unknown field "answer".*fields of an item: id, task/,
    ],
    [
      "bad id",
      `{"id": "", "task": "x", "reference": 1}`,
      /line 1: id: id must be a non-empty string/,
    ],
    [
      "duplicate id",
      `{"id": "a", "task": "x", "reference": 1}\n\n{"id": "a", "task": "y", "reference": 2}`,
      /line 3: id: id "a" is already used on line 1/,
    ],
    [
      "bad run verifier kind",
      `{"task": "x", "reference": 1, "verifiers": [{"kind": "telepathy"}]}`,
      /line 1: verifiers\[0\]/,
    ],
    [
      "bad regex in grade",
      `{"task": "x", "reference": 1, "grade": {"kind": "regex", "mustMatch": ["(unclosed"]}}`,
      /line 1: grade.*mustMatch/,
    ],
    [
      "judge as grade",
      `{"task": "x", "reference": 1, "grade": {"kind": "llm_judge", "rubric": "r"}}`,
      /line 1: grade: grading must be deterministic/,
    ],
    [
      "verifiers not a list",
      `{"task": "x", "reference": 1, "verifiers": {}}`,
      /line 1: verifiers: verifiers must be a list/,
    ],
    ["empty file", "\n\n", /dataset data\.jsonl has no items/],
  ])("%s", (_name, text, message) => {
    const line = errorOf(() => parseDataset(text, "data", "data.jsonl"));
    expect(line).toMatch(message);
    expect(line.split("\n")).toHaveLength(1);
  });

  it("a missing file names the path", () => {
    expect(errorOf(() => loadDataset("/no/such/file.jsonl"))).toMatch(
      /--dataset: cannot read dataset \/no\/such\/file\.jsonl \(ENOENT\)/,
    );
  });

  it("items given over HTTP are named by index", () => {
    expect(
      errorOf(() =>
        parseDatasetItems(
          [
            { task: "x", reference: 1 },
            { task: 3, reference: 1 },
          ],
          "d",
        ),
      ),
    ).toMatch(/^items\[1\]: task:/);
  });

  it("ids default to the line; blank lines are skipped; the hash follows the bytes", () => {
    const a = parseDataset(`${ok()}\n\n${ok({ id: 7 })}\n`, "d");
    expect(a.items.map((i) => [i.id, i.line])).toEqual([
      ["line-1", 1],
      ["7", 3],
    ]);
    expect(parseDataset(`${ok()}\n\n${ok({ id: 7 })}\n`, "d").sha256).toBe(a.sha256);
    expect(parseDataset(`${ok()}\n${ok({ id: 7 })}\n`, "d").sha256).not.toBe(a.sha256);
  });
});

describe("grading", () => {
  const grade = async (reference: unknown, text: string, extra: Record<string, unknown> = {}) => {
    const [item] = parseDatasetItems([{ task: "t", reference, ...extra }], "d").items;
    const verdicts = await runVerifiers(graderFor(item!), text, { task: "t", iteration: 0 });
    return verdicts.every((v) => v.pass);
  };

  it("numbers (and numeric strings) are compared numerically on the final answer", async () => {
    expect(defaultGrade(5)).toMatchObject({ kind: "answer_match", mode: "numeric", expected: 5 });
    expect(await grade(5, "2 + 3 = 5\nAnswer: 5.0")).toBe(true);
    expect(await grade("1200", "Answer: 1,200")).toBe(true);
    expect(await grade(5, "5 is close, but Answer: 6")).toBe(false);
  });

  it("other strings are exact (case-insensitive) matches", async () => {
    expect(defaultGrade("Paris")).toMatchObject({ kind: "answer_match", mode: "exact" });
    expect(await grade("Paris", "Answer: paris")).toBe(true);
    expect(await grade("Paris", "Answer: Lyon")).toBe(false);
  });

  it("an object reference requires every field to equal the reference", async () => {
    const ref = { name: "Maria Chen", age: 34 };
    expect(await grade(ref, '{"name": "Maria Chen", "age": 34, "city": "Lisbon"}')).toBe(true);
    expect(await grade(ref, '{"name": "Maria Chen", "age": "34"}')).toBe(false);
    expect(await grade(ref, '{"name": "Maria Chen"}')).toBe(false);
  });

  it("an explicit grade replaces the default", async () => {
    const extra = { grade: { kind: "regex", mustMatch: ["^Answer: (yes|no)$"], flags: "m" } };
    expect(await grade(5, "Answer: yes", extra)).toBe(true);
  });
});
