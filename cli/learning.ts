// `refinery lessons ...` (list, search, add, edit, pin, unpin, delete) and `refinery export`
// (SFT / DPO / PASR-trace JSONL, streamed to a file or stdout). They open the same database and
// store as the server, so lessons learned by served runs show up here and the other way round.
import { createWriteStream, openSync } from "node:fs";
import { once } from "node:events";
import { openSqliteCheckpointer } from "../core/checkpointer.ts";
import { RefineryError } from "../core/errors.ts";
import {
  defaultVerdict,
  EXPORT_FORMATS,
  exportJsonl,
  ISO_DATE_HINT,
  isoDateFilter,
  type ExportFormat,
} from "../core/learning/export.ts";
import type { Lesson } from "../core/memory/lessons.ts";
import {
  OUTCOME_VERDICTS,
  sqliteLearningSource,
  type OutcomeFilter,
} from "../core/storage/sqlite/learning-records.ts";
import { openLearning, type OpenedLearning } from "../graphs/learning.ts";
import { systemAssistantId } from "../graphs/registry.ts";
import { existingDbSettings, parseFlags, settingsFromFlags } from "./args.ts";
import { closest } from "../core/suggest.ts";
import type { CliIO } from "./main.ts";

const LESSONS_HELP = `refinery lessons COMMAND [options]

Commands:
  list [--query TEXT] [--limit N]   the assistant's lessons (ranked against TEXT when given)
  search TASK                       the lessons a run of TASK would get in its prompt
  add TEXT [--keywords a,b] [--pin] add a lesson by hand
  edit ID [--text TEXT] [--keywords a,b] [--restore]
                                    change a lesson; --restore un-demotes it
  pin ID | unpin ID                 pinned lessons are never evicted or demoted out of prompts
  delete ID                         delete a lesson
Options:
      --assistant ID     assistant id or graph id (default: the refine graph's assistant)
      --json             print JSON
      --db PATH          SQLite file (default REFINERY_DB or ./data/refinery.db)
Lessons live in REFINERY_STORE_URL (Postgres) when set, otherwise in the SQLite file.
`;

const EXPORT_HELP = `refinery export --format sft|dpo|pasr [options]

Writes JSONL training data from the runs kept in the database, streamed (any size):
  sft    {"messages": [user task, assistant final answer], "metadata": {...}}
  dpo    {"prompt": [...], "chosen": [final], "rejected": [earlier draft], "reason": "...", ...}
  pasr   {"messages": [system, user, assistant "<think>…<refine>…</refine>…</think><answer>…</answer>"]}
Only answers that passed every hard verifier or were approved by a person, not rejected and not
rated below 0.5, are exported. sft leaves out answers that fail a hard check unless
--verdict any (or failed) asks for them; their metadata names the failing checks.
Filters:
      --graph ID            runs of this graph
      --assistant ID        runs of this assistant
      --since DATE          runs that ended at or after DATE (ISO, e.g. 2026-11-01)
      --until DATE          runs that ended before DATE
      --verdict V           verified | failed | any: the final answer passed every hard check, or not
                            (default: verified for sft, any for dpo and pasr)
      --approved-only       only answers a person approved
Output:
  -o, --out PATH            write to PATH (default: standard output)
      --db PATH             SQLite file (default REFINERY_DB or ./data/refinery.db)
`;

/** `existing`: the command reads stored data, so a database file that is not there is an error. */
async function open(
  io: CliIO,
  db: unknown,
  existing: boolean,
): Promise<OpenedLearning & { closeAll(): Promise<void> }> {
  const settings = existing ? existingDbSettings(io.env, db) : settingsFromFlags(io.env, db);
  const checkpointer = openSqliteCheckpointer(settings.dbPath);
  const learning = await openLearning(settings, sqliteLearningSource(checkpointer.db!)).catch(
    (err: unknown) => {
      checkpointer.close();
      throw err;
    },
  );
  return {
    ...learning,
    closeAll: async () => {
      await learning.close();
      checkpointer.close();
    },
  };
}

function assistantOf(flag: unknown): string {
  if (typeof flag !== "string" || flag === "") return systemAssistantId("refine");
  return /^[0-9a-f-]{36}$/i.test(flag) ? flag : systemAssistantId(flag);
}

function keywordsOf(flag: unknown): string[] | undefined {
  return typeof flag === "string"
    ? flag
        .split(",")
        .map((k) => k.trim())
        .filter(Boolean)
    : undefined;
}

function positiveInt(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new RefineryError("invalid_input", `${field} must be a positive integer`, {
      field,
      fix: `e.g. ${field} 10`,
    });
  return n;
}

function line(l: Lesson): string {
  const flags = [l.pinned ? "pinned" : "", l.demoted ? "demoted" : ""].filter(Boolean).join(",");
  return `${l.id}  ${l.text}  (${l.source}; used ${l.uses}, helped ${l.helped}, failed ${l.failed}${flags ? `; ${flags}` : ""})\n`;
}

export async function lessonsCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      assistant: { type: "string" },
      query: { type: "string" },
      limit: { type: "string" },
      keywords: { type: "string" },
      text: { type: "string" },
      pin: { type: "boolean" },
      restore: { type: "boolean" },
      json: { type: "boolean" },
      db: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    "lessons",
  );
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    io.stdout.write(LESSONS_HELP);
    return sub || values.help ? 0 : 2;
  }
  const known = ["list", "search", "add", "edit", "pin", "unpin", "delete"];
  if (!known.includes(sub)) {
    const near = closest(sub, known);
    throw new RefineryError("invalid_input", `unknown lessons command "${sub}"`, {
      fix: near ? `did you mean \`refinery lessons ${near}\`?` : `use one of ${known.join(", ")}`,
    });
  }
  const needsArg = sub !== "list";
  if (needsArg && rest.length !== 1)
    throw new RefineryError(
      "invalid_input",
      `lessons ${sub} takes exactly one ${sub === "add" ? "TEXT" : sub === "search" ? "TASK" : "ID"}`,
      { fix: "quote it: refinery lessons " + sub + ' "..."' },
    );
  const limit = positiveInt(values.limit, "--limit");
  const assistant = assistantOf(values.assistant);
  // Adding a lesson may start a new database; every other subcommand reads an existing one.
  const learning = await open(io, values.db, sub !== "add");
  try {
    const memory = learning.memory;
    if (!memory)
      throw new RefineryError("invalid_config", "the lessons memory is switched off", {
        field: "REFINERY_MEMORY",
        fix: "unset REFINERY_MEMORY or set it to on",
      });
    const print = (value: unknown, text: string) =>
      io.stdout.write(values.json ? `${JSON.stringify(value, null, 2)}\n` : text);
    const arg = rest[0]!;
    const missing = () =>
      new RefineryError("not_found", `no lesson ${arg} for assistant ${assistant}`, {
        field: "ID",
        fix: "list the ids with `refinery lessons list`",
      });
    if (sub === "list") {
      const lessons = await memory.list(assistant, {
        ...(typeof values.query === "string" ? { query: values.query } : {}),
        ...(limit ? { limit } : {}),
      });
      print(lessons, lessons.map(line).join("") || "no lessons\n");
    } else if (sub === "search") {
      const hits = await memory.retrieve(assistant, arg, limit);
      print(
        hits,
        hits.map((h) => `${h.id}  ${h.text}  (score ${h.score})\n`).join("") ||
          "no lessons match\n",
      );
    } else if (sub === "add") {
      const keywords = keywordsOf(values.keywords);
      const { lesson, created } = await memory.add(assistant, {
        text: arg,
        graph_id: "refine",
        task: arg,
        ...(keywords ? { keywords } : {}),
        source: "manual",
        pinned: Boolean(values.pin),
      });
      print(lesson, `${created ? "added" : "merged into"} ${line(lesson)}`);
    } else if (sub === "delete") {
      if (!(await memory.delete(assistant, arg))) throw missing();
      print({ deleted: arg }, `deleted ${arg}\n`);
    } else {
      const keywords = keywordsOf(values.keywords);
      const patch =
        sub === "pin"
          ? { pinned: true }
          : sub === "unpin"
            ? { pinned: false }
            : {
                ...(typeof values.text === "string" ? { text: values.text } : {}),
                ...(keywords ? { keywords } : {}),
                ...(values.restore ? { demoted: false } : {}),
                ...(values.pin ? { pinned: true } : {}),
              };
      if (Object.keys(patch).length === 0)
        throw new RefineryError("invalid_input", "nothing to change", {
          fix: "give --text, --keywords, --pin or --restore",
        });
      const lesson = await memory.update(assistant, arg, patch);
      if (!lesson) throw missing();
      print(lesson, `updated ${line(lesson)}`);
    }
    return 0;
  } finally {
    await learning.closeAll();
  }
}

export async function exportCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      format: { type: "string" },
      graph: { type: "string" },
      assistant: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      verdict: { type: "string" },
      "approved-only": { type: "boolean" },
      out: { type: "string", short: "o" },
      db: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    "export",
  );
  if (values.help) {
    io.stdout.write(EXPORT_HELP);
    return 0;
  }
  if (positionals.length)
    throw new RefineryError("invalid_input", `unexpected argument "${positionals[0]}"`, {
      fix: "see refinery export --help",
    });
  const format = values.format as ExportFormat | "" | undefined;
  if (format === undefined || format === "")
    throw new RefineryError("invalid_input", "--format is required: sft, dpo or pasr", {
      field: "--format",
      fix: "e.g. refinery export --format sft --out sft.jsonl",
    });
  if (!EXPORT_FORMATS.includes(format)) {
    const near = closest(format, EXPORT_FORMATS);
    throw new RefineryError(
      "invalid_input",
      `unknown format "${format}": the formats are ${EXPORT_FORMATS.join(", ")}`,
      {
        field: "--format",
        fix: near
          ? `did you mean --format ${near}?`
          : "e.g. refinery export --format sft --out sft.jsonl",
      },
    );
  }
  const date = (flag: "since" | "until") => {
    const v = values[flag];
    if (v === undefined) return undefined;
    const iso = typeof v === "string" ? isoDateFilter(v) : undefined;
    if (iso === undefined)
      throw new RefineryError("invalid_input", `--${flag} must be ${ISO_DATE_HINT}`, {
        field: `--${flag}`,
        fix: `e.g. --${flag} 2026-11-01`,
      });
    return iso;
  };
  const verdict = (values.verdict ?? (format ? defaultVerdict(format) : "any")) as NonNullable<
    OutcomeFilter["verdict"]
  >;
  if (!OUTCOME_VERDICTS.includes(verdict))
    throw new RefineryError("invalid_input", "--verdict must be verified, failed or any", {
      field: "--verdict",
      fix: "e.g. --verdict verified (or leave it out for any)",
    });
  const filter: OutcomeFilter = {
    ...(typeof values.graph === "string" ? { graph_id: values.graph } : {}),
    ...(typeof values.assistant === "string"
      ? { assistant_id: assistantOf(values.assistant) }
      : {}),
    ...(date("since") ? { since: date("since") } : {}),
    ...(date("until") ? { until: date("until") } : {}),
    verdict,
    human_approved_only: Boolean(values["approved-only"]),
  };
  if (filter.since && filter.until && filter.since >= filter.until)
    throw new RefineryError("invalid_input", "--since must be before --until", {
      field: "--since",
      fix: "swap the two dates",
    });
  const learning = await open(io, values.db, true);
  try {
    let out: ReturnType<typeof createWriteStream> | undefined;
    if (typeof values.out === "string") {
      let fd: number;
      try {
        fd = openSync(values.out, "w");
      } catch (err) {
        throw new RefineryError(
          "invalid_input",
          `cannot write ${values.out} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
          { field: "--out", fix: "give a writable file path in an existing directory" },
        );
      }
      out = createWriteStream("", { fd });
    }
    let count = 0;
    for await (const l of exportJsonl(learning.records.outcomes(filter), format)) {
      count += 1;
      if (out) {
        if (!out.write(l)) await once(out, "drain");
      } else if ((io.stdout.write(l) as unknown) === false && "once" in io.stdout) {
        // A slow reader: wait rather than buffer the whole export in memory.
        await once(io.stdout as unknown as NodeJS.EventEmitter, "drain");
      }
    }
    if (out) {
      out.end();
      await once(out, "finish");
      io.stderr.write(`refinery: wrote ${count} ${format} example(s) to ${values.out}\n`);
    }
    return 0;
  } finally {
    await learning.closeAll();
  }
}
