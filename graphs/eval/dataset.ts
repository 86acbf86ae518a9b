// Evaluation datasets: JSONL, one item per line ({id?, task, context?, reference, grade?,
// verifiers?}). Every problem is reported with its line number and field, and the grading check
// is built here, once, from `grade` or from the reference.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { z } from "zod";
import { isRefineryError, RefineryError } from "../../core/errors.ts";
import { parseBenchmark, splitFormat } from "./benchmarks.ts";
import {
  createVerifiers,
  parseVerifierSpecs,
  type Verifier,
  type VerifierSpec,
} from "../../core/verifiers/index.ts";

const ReferenceSchema = z.union(
  [z.number().finite(), z.string().trim().min(1), z.boolean(), z.record(z.string(), z.unknown())],
  {
    error:
      "reference must be a number, a non-empty string, true/false, or a JSON object (for extraction tasks)",
  },
);

export const DatasetLineSchema = z.strictObject({
  id: z
    .union(
      [
        z
          .string()
          .trim()
          .min(1, "id must be a non-empty string")
          .max(200, "id must be at most 200 characters"),
        z.number().int("a numeric id must be an integer"),
      ],
      { error: "id must be a non-empty string or an integer" },
    )
    .optional(),
  task: z
    .string({ error: "task must be a string: the prompt the model answers" })
    .trim()
    .min(1, "task must not be empty"),
  context: z.string({ error: "context must be a string" }).optional(),
  reference: ReferenceSchema,
  grade: z.unknown().optional(),
  verifiers: z
    .array(z.unknown(), { error: "verifiers must be a list of verifier specs" })
    .optional(),
});
export type DatasetLine = z.infer<typeof DatasetLineSchema>;
export type Reference = DatasetLine["reference"];

export interface DatasetItem {
  id: string;
  /** Which dataset the item came from (its file's base name), and the line it is on. */
  dataset: string;
  line: number;
  /** Where it is, for messages: "datasets/arithmetic.jsonl line 3" or "items[2]". */
  where: string;
  task: string;
  context: string;
  reference: Reference;
  /** The check that decides whether an answer is right. It never reaches the run. */
  grade: VerifierSpec;
  /** The checks the run itself may use (schemas, format, arithmetic): never the reference. */
  verifiers: unknown[];
}

export interface Dataset {
  name: string;
  /** sha256 of the file's bytes: a changed dataset is a different evaluation. */
  sha256: string;
  items: DatasetItem[];
}

export function datasetNameOf(path: string): string {
  return basename(path, extname(path)) || "dataset";
}

/**
 * Reads a dataset: Refinery's JSONL, or a standard benchmark's public file format (benchmarks.ts),
 * named as `FORMAT:PATH` (`gsm8k:test.jsonl`) or recognised by the first record's fields.
 */
export function loadDataset(spec: string): Dataset {
  const { format, path } = splitFormat(spec);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RefineryError(
      "invalid_input",
      `cannot read dataset ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      { field: "--dataset", fix: "pass the path of a JSONL file, one item per line" },
    );
  }
  const csv = extname(path).toLowerCase() === ".csv";
  if (format === "refinery" || (format === undefined && !csv && isRefineryJsonl(text))) {
    return parseDataset(text, datasetNameOf(path), path);
  }
  if (csv && format !== undefined && format !== "mmlu") {
    throw new RefineryError("invalid_input", `a CSV dataset is read as MMLU, not ${format}`, {
      field: "--dataset",
      fix: `use mmlu:${path}, or give ${format} as JSONL`,
    });
  }
  return parseBenchmark(text, datasetNameOf(path), path, format, csv);
}

/** Refinery's own format: the first record has `task` or `reference` (benchmark records do not). */
function isRefineryJsonl(text: string): boolean {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== "");
  if (first === undefined) return true;
  try {
    const value = JSON.parse(first) as unknown;
    if (value === null || typeof value !== "object" || Array.isArray(value)) return true;
    return "task" in value || "reference" in value;
  } catch {
    // Not JSON: a SQuAD document spans lines; otherwise the JSONL parser names the line.
    return !/^\s*\{\s*"(version|data)"/.test(text);
  }
}

/** Parses JSONL text; `where` names the source in errors (a path, or "items" for HTTP). */
export function parseDataset(text: string, name: string, where = name): Dataset {
  const items: DatasetItem[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw lineError(
        `${where} line ${line}`,
        undefined,
        `not valid JSON (${(err as Error).message})`,
        {
          fix: "write one JSON object per line",
        },
      );
    }
    const item = parseDatasetLine(value, { where: `${where} line ${line}`, line, dataset: name });
    const first = seen.get(item.id);
    if (first !== undefined) {
      throw lineError(
        item.where,
        "id",
        `id ${JSON.stringify(item.id)} is already used on line ${first}`,
        {
          fix: "give every item a unique id",
        },
      );
    }
    seen.set(item.id, line);
    items.push(item);
  });
  if (items.length === 0) {
    throw new RefineryError("invalid_input", `dataset ${where} has no items`, {
      field: "--dataset",
      fix: 'add one JSON object per line, e.g. {"task": "What is 2 + 3?", "reference": 5}',
    });
  }
  return { name, sha256: createHash("sha256").update(text).digest("hex"), items };
}

/** Items given as a JSON array (the HTTP API); errors name `items[i]`. */
export function parseDatasetItems(values: readonly unknown[], name: string): Dataset {
  const text = values.map((v) => JSON.stringify(v)).join("\n");
  const seen = new Map<string, number>();
  const items = values.map((value, i) => {
    const item = parseDatasetLine(value, { where: `items[${i}]`, line: i + 1, dataset: name });
    const first = seen.get(item.id);
    if (first !== undefined) {
      throw lineError(
        item.where,
        "id",
        `id ${JSON.stringify(item.id)} is already used by items[${first}]`,
        {
          fix: "give every item a unique id",
        },
      );
    }
    seen.set(item.id, i);
    return item;
  });
  return { name, sha256: createHash("sha256").update(text).digest("hex"), items };
}

export function parseDatasetLine(
  value: unknown,
  at: { where: string; line: number; dataset: string },
): DatasetItem {
  const parsed = DatasetLineSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const unknownKey = issue?.code === "unrecognized_keys" ? issue.keys[0] : undefined;
    const path = [...(issue?.path ?? []), ...(unknownKey === undefined ? [] : [unknownKey])];
    const field =
      path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".") || undefined;
    throw lineError(
      at.where,
      field,
      unknownKey === undefined
        ? (issue?.message ?? "invalid item")
        : `unknown field ${JSON.stringify(unknownKey)}`,
      {
        fix:
          unknownKey === undefined
            ? 'an item looks like {"id": "a1", "task": "...", "reference": 42}'
            : `fields of an item: ${Object.keys(DatasetLineSchema.shape).join(", ")}`,
      },
    );
  }
  const data = parsed.data;
  let grade: VerifierSpec;
  let verifiers: unknown[];
  try {
    grade =
      data.grade === undefined
        ? defaultGrade(data.reference, at)
        : (parseVerifierSpecs([data.grade], "grade")[0] as VerifierSpec);
    if (grade.kind === "llm_judge") {
      throw new RefineryError(
        "invalid_input",
        "grading must be deterministic; an llm_judge cannot grade",
        {
          field: "grade",
          fix: "grade with answer_match, json_schema, regex, constraints or a webhook; put a judge in verifiers",
        },
      );
    }
    // Build it now so a bad regex or schema fails before anything runs.
    createVerifiers([grade], {}, "grade");
    verifiers = data.verifiers ?? [];
    parseVerifierSpecs(verifiers, "verifiers");
  } catch (err) {
    if (!isRefineryError(err)) throw err;
    throw lineError(at.where, err.field, err.message, { fix: err.fix });
  }
  return {
    id: data.id === undefined ? `line-${at.line}` : String(data.id),
    dataset: at.dataset,
    line: at.line,
    where: at.where,
    task: data.task,
    context: data.context ?? "",
    reference: data.reference,
    grade,
    verifiers,
  };
}

function lineError(
  where: string,
  field: string | undefined,
  message: string,
  options: { fix?: string } = {},
): RefineryError {
  return new RefineryError("invalid_input", message, {
    field: `${where}${field ? `: ${field}` : ""}`,
    fix: options.fix,
  });
}

const NUMERIC = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*$/;

/**
 * The default grading check: a numeric or exact answer_match for values, and for an object a
 * JSON Schema whose every property must equal the reference (`const`).
 */
export function defaultGrade(reference: Reference, at?: { where: string }): VerifierSpec {
  if (typeof reference === "number" || (typeof reference === "string" && NUMERIC.test(reference))) {
    return parseVerifierSpecs([
      { kind: "answer_match", id: "grade", expected: reference, mode: "numeric" },
    ])[0] as VerifierSpec;
  }
  if (typeof reference === "string" || typeof reference === "boolean") {
    return parseVerifierSpecs([
      { kind: "answer_match", id: "grade", expected: String(reference), mode: "exact" },
    ])[0] as VerifierSpec;
  }
  const keys = Object.keys(reference);
  if (keys.length === 0) {
    throw new RefineryError("invalid_input", "an object reference needs at least one field", {
      field: at ? `${at.where}: reference` : "reference",
    });
  }
  const properties = Object.fromEntries(keys.map((k) => [k, { const: reference[k] }]));
  return parseVerifierSpecs([
    { kind: "json_schema", id: "grade", schema: { type: "object", required: keys, properties } },
  ])[0] as VerifierSpec;
}

/** The grading verifier of an item (answer_match/json_schema/regex/... ; never a model). */
export function graderFor(item: DatasetItem): Verifier[] {
  return createVerifiers([item.grade], {}, "grade");
}

/** The reference as the simulated model's answer key stores it (objects as JSON). */
export function referenceText(reference: Reference): string {
  return typeof reference === "object" ? JSON.stringify(reference) : String(reference);
}
