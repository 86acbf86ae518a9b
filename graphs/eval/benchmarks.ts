// Loaders for the public file formats of standard benchmarks: GSM8K (`####` answers), MATH and
// MATH-500 (`\boxed{}`), ARC and MMLU (multiple choice), SQuAD-style open QA. Each turns a record
// into a dataset item with its prompt and grading check; the format is named (`gsm8k:PATH`) or
// recognised by the first record's fields. Errors name the line and the field.
import { createHash } from "node:crypto";
import { RefineryError } from "../../core/errors.ts";
import { lastBoxed } from "../../core/verifiers/answer-match.ts";
import type { Dataset, DatasetItem } from "./dataset.ts";
import { parseDatasetLine } from "./dataset.ts";

export const BENCHMARK_FORMATS = ["refinery", "gsm8k", "math", "arc", "mmlu", "qa"] as const;
export type BenchmarkFormat = (typeof BENCHMARK_FORMATS)[number];

export const MATH_INSTRUCTION = "Put the final answer in \\boxed{}.";
/** The instruction after the options; ARC's numeric labels are numbers, not letters. */
export function choiceInstruction(labels: readonly string[]): string {
  const kind = labels.every((l) => /^[A-Za-z]$/.test(l)) ? "letter" : "label";
  return `Answer with the ${kind} of the correct option, on a last line "Answer: <${kind}>".`;
}
export const QA_INSTRUCTION =
  'Answer with the shortest span of the context that answers the question, on a last line "Answer: <span>".';

type Row = Record<string, unknown>;
interface At {
  where: string;
  line: number;
  dataset: string;
}

/** `gsm8k:data/test.jsonl` -> format and path; a Windows drive letter is not a format. */
export function splitFormat(spec: string): { format?: BenchmarkFormat; path: string } {
  const m = /^([a-z0-9]+):(.+)$/i.exec(spec);
  const name = m?.[1]?.toLowerCase();
  if (!m || !name || name.length === 1) return { path: spec };
  if (!(BENCHMARK_FORMATS as readonly string[]).includes(name)) {
    throw new RefineryError("invalid_input", `unknown dataset format "${m[1]}"`, {
      field: "--dataset",
      fix: `write FORMAT:PATH with FORMAT one of ${BENCHMARK_FORMATS.join(", ")}, or just PATH to recognise the format`,
    });
  }
  return { format: name as BenchmarkFormat, path: m[2] as string };
}

/** The format a record looks like, from its fields (undefined: not recognised). */
export function detectFormat(row: Row): BenchmarkFormat | undefined {
  const has = (k: string) => row[k] !== undefined;
  if (has("task") && has("reference")) return "refinery";
  if (has("answerKey") && has("question")) return "arc";
  if (has("problem") && (has("solution") || has("answer"))) return "math";
  if (has("question") && has("choices") && has("answer")) return "mmlu";
  if (has("question") && typeof row.answer === "string" && row.answer.includes("####"))
    return "gsm8k";
  if (has("question") && (has("answers") || has("answer"))) return "qa";
  return undefined;
}

/**
 * Parses a benchmark file. `format` undefined: recognised from the first record. The text is
 * JSONL, except a SQuAD JSON file ({"data": [...]}) and an MMLU CSV (question,A,B,C,D,answer).
 */
export function parseBenchmark(
  text: string,
  name: string,
  where: string,
  format: BenchmarkFormat | undefined,
  csv: boolean,
): Dataset {
  const sha256 = createHash("sha256").update(text).digest("hex");
  const rows = csv ? csvRows(text, where) : jsonRows(text, where);
  if (rows.length === 0) {
    throw new RefineryError("invalid_input", `dataset ${where} has no items`, {
      field: "--dataset",
      fix: "the file holds no records",
    });
  }
  const first = rows[0] as SourceRow;
  const chosen = format ?? (csv ? "mmlu" : detectFormat(first.row));
  if (!chosen) {
    throw new RefineryError(
      "invalid_input",
      `cannot tell the format of ${where} from its fields (${Object.keys(first.row).join(", ") || "none"})`,
      {
        field: `${where} line ${first.line}`,
        fix: `name it: --dataset FORMAT:${where} with FORMAT one of ${BENCHMARK_FORMATS.join(", ")} (see docs/evaluation.md)`,
      },
    );
  }
  const seen = new Map<string, number>();
  const items = rows.map(({ row, line, unit }) => {
    const at = { where: `${where} ${unit ?? "line"} ${line}`, line, dataset: name };
    const item = toItem(chosen, row, at);
    const before = seen.get(item.id);
    if (before !== undefined) {
      throw new RefineryError(
        "invalid_input",
        `id ${JSON.stringify(item.id)} is already used (${unit ?? "line"} ${before})`,
        {
          field: `${at.where}: id`,
          fix: "give every item a unique id",
        },
      );
    }
    seen.set(item.id, line);
    return item;
  });
  return { name, sha256, items };
}

function toItem(format: BenchmarkFormat, row: Row, at: At): DatasetItem {
  switch (format) {
    case "refinery":
      return parseDatasetLine(row, at);
    case "gsm8k":
      return gsm8kItem(row, at);
    case "math":
      return mathItem(row, at);
    case "arc":
      return arcItem(row, at);
    case "mmlu":
      return mmluItem(row, at);
    case "qa":
      return qaItem(row, at);
  }
}

function fieldError(at: At, field: string, message: string, fix: string): RefineryError {
  return new RefineryError("invalid_input", message, { field: `${at.where}: ${field}`, fix });
}

function str(row: Row, key: string, at: At, fix: string): string {
  const v = row[key];
  if (typeof v !== "string" || v.trim() === "")
    throw fieldError(at, key, `${key} must be a non-empty string`, fix);
  return v;
}

function idOf(row: Row, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = row[k];
    if (typeof v === "string" && v.trim() !== "") return v.trim();
    if (typeof v === "number" && Number.isInteger(v)) return String(v);
  }
  return undefined;
}

function item(
  at: At,
  line: { id?: string; task: string; context?: string; reference: string | number; grade: object },
): DatasetItem {
  return parseDatasetLine(
    Object.fromEntries(Object.entries(line).filter(([, v]) => v !== undefined)),
    at,
  );
}

function gsm8kItem(row: Row, at: At): DatasetItem {
  const question = str(row, "question", at, "a GSM8K record is {question, answer}");
  const answer = str(row, "answer", at, 'the answer ends with "#### <number>"');
  const m = /####\s*([^\n]+?)\s*$/.exec(answer.trim());
  const value = m?.[1] ? Number(m[1].replace(/[,$\s]/g, "")) : NaN;
  if (!Number.isFinite(value)) {
    throw fieldError(
      at,
      "answer",
      `no "#### <number>" line at the end of the answer`,
      'GSM8K answers end with a line like "#### 72"',
    );
  }
  return item(at, {
    id: idOf(row, "id"),
    task: question,
    reference: value,
    grade: { kind: "answer_match", expected: value, mode: "numeric" },
  });
}

function mathItem(row: Row, at: At): DatasetItem {
  const problem = str(
    row,
    "problem",
    at,
    "a MATH record is {problem, solution} or {problem, answer}",
  );
  let answer = typeof row.answer === "string" && row.answer.trim() !== "" ? row.answer : undefined;
  if (answer === undefined && typeof row.solution === "string") answer = lastBoxed(row.solution);
  if (answer === undefined || answer.trim() === "") {
    throw fieldError(
      at,
      row.answer === undefined ? "solution" : "answer",
      "no answer: neither an answer field nor a \\boxed{} in the solution",
      "give {answer} or a solution with \\boxed{<answer>}",
    );
  }
  return item(at, {
    id: idOf(row, "unique_id", "id"),
    task: `${problem}\n\n${MATH_INSTRUCTION}`,
    reference: answer.trim(),
    grade: { kind: "answer_match", expected: answer.trim(), mode: "math" },
  });
}

function choiceItem(
  at: At,
  id: string | undefined,
  question: string,
  choices: { label: string; text: string }[],
  answer: string,
  answerField: string,
): DatasetItem {
  if (!choices.some((c) => c.label === answer)) {
    throw fieldError(
      at,
      answerField,
      `answer ${JSON.stringify(answer)} is not one of the labels ${choices.map((c) => c.label).join(", ")}`,
      "the answer names the label of the right option",
    );
  }
  const options = choices.map((c) => `${c.label}. ${c.text}`).join("\n");
  return item(at, {
    id,
    task: `${question}\n\n${options}\n\n${choiceInstruction(choices.map((c) => c.label))}`,
    reference: answer,
    grade: { kind: "answer_match", expected: answer, mode: "choice", choices },
  });
}

function arcItem(row: Row, at: At): DatasetItem {
  const fix =
    'ARC: {"id", "question": {"stem", "choices": [{"label", "text"}]}, "answerKey"} or {"question", "choices": {"label": [...], "text": [...]}, "answerKey"}';
  const q = row.question;
  let question: string;
  let choices: { label: string; text: string }[];
  const raw = (typeof q === "object" && q !== null ? (q as Row).choices : row.choices) as unknown;
  if (typeof q === "object" && q !== null) question = str(q as Row, "stem", at, fix);
  else question = str(row, "question", at, fix);
  if (Array.isArray(raw)) {
    choices = raw.map((c: unknown) => ({
      label: String((c as Row)?.label ?? ""),
      text: String((c as Row)?.text ?? ""),
    }));
  } else if (
    raw &&
    typeof raw === "object" &&
    Array.isArray((raw as Row).label) &&
    Array.isArray((raw as Row).text)
  ) {
    const { label, text } = raw as { label: unknown[]; text: unknown[] };
    choices = label.map((l, i) => ({ label: String(l), text: String(text[i] ?? "") }));
  } else {
    throw fieldError(at, "choices", "choices are missing or not a list", fix);
  }
  if (choices.length < 2 || choices.some((c) => c.label.trim() === ""))
    throw fieldError(at, "choices", "an ARC question needs at least two labelled choices", fix);
  const key = row.answerKey;
  if (typeof key !== "string" || key.trim() === "")
    throw fieldError(at, "answerKey", "answerKey must be the label of the right choice", fix);
  return choiceItem(at, idOf(row, "id"), question, choices, key.trim(), "answerKey");
}

const LETTERS = "ABCDEFGHIJ";

function mmluItem(row: Row, at: At): DatasetItem {
  const fix =
    'MMLU: {"question", "choices": ["...", ...], "answer": 0-based index or letter}, or CSV rows question,A,B,C,D,answer';
  const question = str(row, "question", at, fix);
  const raw = row.choices;
  if (
    !Array.isArray(raw) ||
    raw.length < 2 ||
    raw.length > LETTERS.length ||
    raw.some((c) => typeof c !== "string" && typeof c !== "number")
  ) {
    throw fieldError(
      at,
      "choices",
      `choices must be a list of 2 to ${LETTERS.length} option texts`,
      fix,
    );
  }
  const choices = raw.map((text, i) => ({ label: LETTERS[i] as string, text: String(text) }));
  const a = row.answer;
  const answer =
    typeof a === "number" && Number.isInteger(a) && a >= 0 && a < choices.length
      ? (LETTERS[a] as string)
      : typeof a === "string" && /^\s*[A-J]\s*$/i.test(a)
        ? a.trim().toUpperCase()
        : typeof a === "string" && /^\s*\d+\s*$/.test(a) && Number(a) < choices.length
          ? (LETTERS[Number(a)] as string)
          : undefined;
  if (answer === undefined)
    throw fieldError(
      at,
      "answer",
      `answer ${JSON.stringify(a)} is neither a 0-based option index nor a letter A-${LETTERS[choices.length - 1]}`,
      fix,
    );
  const subject =
    typeof row.subject === "string" && row.subject !== ""
      ? `(${row.subject.replace(/_/g, " ")}) `
      : "";
  return choiceItem(at, idOf(row, "id"), `${subject}${question}`, choices, answer, "answer");
}

function qaItem(row: Row, at: At): DatasetItem {
  const fix =
    'QA: {"question", "context"?, "answers": {"text": [...]} or ["..."]} or {"question", "answer"}';
  const question = str(row, "question", at, fix);
  const a = row.answers ?? row.answer;
  const list = Array.isArray(a)
    ? a
    : a && typeof a === "object" && Array.isArray((a as Row).text)
      ? ((a as Row).text as unknown[])
      : [a];
  const golds = list
    .map((g) => (g && typeof g === "object" ? (g as Row).text : g))
    .filter(
      (g): g is string | number =>
        (typeof g === "string" && g.trim() !== "") || typeof g === "number",
    )
    .map(String);
  if (golds.length === 0) {
    throw fieldError(
      at,
      row.answers !== undefined ? "answers" : "answer",
      "no answer text (an unanswerable SQuAD 2.0 question cannot be graded by exact match)",
      fix,
    );
  }
  const context = typeof row.context === "string" ? row.context : undefined;
  const unique = [...new Set(golds)];
  return item(at, {
    id: idOf(row, "id"),
    task: context ? `${question}\n\n${QA_INSTRUCTION}` : question,
    context,
    reference: unique[0] as string,
    grade: {
      kind: "answer_match",
      expected: unique[0] as string,
      mode: "qa",
      ...(unique.length > 1 ? { alternatives: unique.slice(1) } : {}),
    },
  });
}

interface SourceRow {
  row: Row;
  /** The line of a JSONL or CSV record; the question's number in a SQuAD document. */
  line: number;
  unit?: "question";
}

function jsonRows(text: string, where: string): SourceRow[] {
  const trimmed = text.trimStart();
  // A SQuAD file: one JSON document {"data": [{"paragraphs": [{"context", "qas": [...]}]}]}.
  if (trimmed.startsWith("{") && /^\{\s*"(version|data)"/.test(trimmed)) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined;
    }
    const data = (doc as Row | undefined)?.data;
    if (Array.isArray(data)) {
      const rows: SourceRow[] = [];
      for (const article of data as Row[]) {
        for (const para of (article.paragraphs as Row[] | undefined) ?? []) {
          for (const qa of (para.qas as Row[] | undefined) ?? []) {
            if (qa.is_impossible === true) continue;
            rows.push({
              row: { ...qa, context: para.context },
              line: rows.length + 1,
              unit: "question",
            });
          }
        }
      }
      return rows;
    }
  }
  const rows: SourceRow[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new RefineryError("invalid_input", `not valid JSON (${(err as Error).message})`, {
        field: `${where} line ${i + 1}`,
        fix: "write one JSON object per line (JSONL); a SQuAD file is one JSON document with a data list",
      });
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new RefineryError("invalid_input", "a record must be a JSON object", {
        field: `${where} line ${i + 1}`,
        fix: "write one JSON object per line",
      });
    }
    rows.push({ row: value as Row, line: i + 1 });
  });
  return rows;
}

/** MMLU's CSV: no header, question,A,B,C,D,answer; quoted fields may hold commas and newlines. */
function csvRows(text: string, where: string): SourceRow[] {
  const records: { cells: string[]; line: number }[] = [];
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        cell += c;
      }
    } else if (c === '"' && cell === "") quoted = true;
    else if (c === ",") {
      cells.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      cells.push(cell);
      if (cells.some((x) => x.trim() !== "")) records.push({ cells, line: start });
      cells = [];
      cell = "";
      line++;
      start = line;
    } else cell += c;
  }
  cells.push(cell);
  if (cells.some((x) => x.trim() !== "")) records.push({ cells, line: start });
  return records.map(({ cells: r, line: n }) => {
    if (r.length < 4) {
      throw new RefineryError(
        "invalid_input",
        `expected question, options and answer, got ${r.length} column(s)`,
        {
          field: `${where} line ${n}`,
          fix: "an MMLU CSV row is question,A,B,C,D,answer (no header)",
        },
      );
    }
    return { row: { question: r[0], choices: r.slice(1, -1), answer: r.at(-1) }, line: n };
  });
}
