// Small datasets for the evaluation tests: explicit arithmetic (the simulation works it out),
// word problems (the simulation "knows" the reference) and one extraction item with a schema.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const answerLine = {
  kind: "regex",
  id: "answer-line",
  mustMatch: ["^Answer: *-?[0-9][0-9,]*(\\.[0-9]+)? *$"],
  flags: "m",
};
const contact = {
  type: "object",
  required: ["name", "age"],
  properties: { name: { type: "string" }, age: { type: "integer" } },
};

export const SMALL_ITEMS = [
  { id: "c1", task: "What is 17 * 23 + 4?", reference: 395, verifiers: [answerLine] },
  { id: "c2", task: "Compute 12 * (3 + 4) - 5.", reference: 79, verifiers: [answerLine] },
  { id: "c3", task: "What is (250 - 75) * 4 / 5?", reference: 140, verifiers: [answerLine] },
  { id: "c4", task: "Evaluate 9 * 8 * 7 - 100.", reference: 404, verifiers: [answerLine] },
  {
    id: "w1",
    task: "A box holds 24 pencils. A teacher needs at least 500 pencils. How many boxes must she buy?",
    reference: 21,
    verifiers: [answerLine],
  },
  {
    id: "w2",
    task: "Maya saves 35 dollars every week. After how many weeks will she have saved 595 dollars?",
    reference: "17",
  },
  {
    id: "x1",
    task: `Extract the person as JSON matching ${JSON.stringify(contact)}. Text: Maria Chen, 34, lives in Lisbon.`,
    reference: { name: "Maria Chen", age: 34 },
    verifiers: [{ kind: "json_schema", schema: contact }],
  },
  { id: "c5", task: "What is 840 / (15 + 9) + 11?", reference: 46, verifiers: [answerLine] },
];

export function writeDataset(dir: string, name: string, items: unknown[] = SMALL_ITEMS): string {
  const path = join(dir, `${name}.jsonl`);
  writeFileSync(path, `${items.map((i) => JSON.stringify(i)).join("\n")}\n`);
  return path;
}

/** `refinery …` in-process (no child): exit code and what it wrote. */
export async function runCliInProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { main } = await import("../../cli/main.ts");
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: { write: (t: string) => void (stdout += t) },
    stderr: { write: (t: string) => void (stderr += t) },
    env,
  });
  return { code, stdout, stderr };
}
