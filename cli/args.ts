// Command-line flags: parsing (every command), --db over REFINERY_DB (every command that opens
// the database), and `refinery run` flags into refine options. Verifier shorthands
// (--expect-number, --must-match, ...) become verifier specs; --verifier takes a full JSON spec.
import {
  parseRefineOptions,
  processSettingsFromEnv,
  type ProcessSettings,
  type RefineOptions,
} from "../core/config.ts";
import { RefineryError } from "../core/errors.ts";
import { closest } from "../core/suggest.ts";
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";

export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * `parseArgs` (strict, positionals allowed) whose refusals are one-line invalid_input errors; an
 * unknown flag names the closest known one. `command` is for the fix ("refinery run --help").
 */
export function parseFlags<
  T extends Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>,
>(args: string[], options: T, command = "") {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const help = `refinery ${command ? `${command} ` : ""}--help`;
    const unknown = /^Unknown option '([^']+)'/.exec(e.message)?.[1];
    if (unknown) {
      const known = Object.keys(options).map((k) => `--${k}`);
      const near = unknown.startsWith("--") ? closest(unknown.split("=")[0]!, known) : undefined;
      throw new RefineryError("invalid_input", `unknown option ${unknown}`, {
        field: unknown,
        fix: near ? `did you mean ${near}? (see ${help})` : `see ${help} for the accepted options`,
      });
    }
    const missing = /^Option '(-[^' ]+)(?:, (--[^' ]+))?[^']*' argument missing/.exec(e.message);
    if (missing) {
      const flag = missing[2] ?? missing[1]!;
      throw new RefineryError("invalid_input", `${flag} needs a value`, {
        field: flag,
        fix: `pass it as ${flag} VALUE (see ${help})`,
      });
    }
    throw new RefineryError("invalid_input", e.message.split("\n")[0] ?? "invalid arguments", {
      fix: `see ${help} for the accepted options`,
    });
  }
}

/**
 * The process settings with `--db PATH` (when given and not empty) in place of REFINERY_DB. Any
 * model base URL is allowed: the CLI's user is the operator, whose API key it is.
 */
export function settingsFromFlags(
  env: Record<string, string | undefined>,
  db: unknown,
  file?: Parameters<typeof processSettingsFromEnv>[1],
): ProcessSettings {
  const path = typeof db === "string" && db !== "" ? { REFINERY_DB: db } : {};
  return { ...processSettingsFromEnv({ ...env, ...path }, file), modelEndpoints: "any" };
}

/**
 * settingsFromFlags for a command that reads what runs stored (resume, approve, export, lessons):
 * a database file that does not exist is refused, naming where the path came from, instead of an
 * empty database being created and read.
 */
export function existingDbSettings(
  env: Record<string, string | undefined>,
  db: unknown,
): ProcessSettings {
  const settings = settingsFromFlags(env, db);
  const path = settings.dbPath;
  if (path !== ":memory:" && !existsSync(path)) {
    const field =
      typeof db === "string" && db !== "" ? "--db" : env.REFINERY_DB ? "REFINERY_DB" : "--db";
    throw new RefineryError("invalid_input", `no database at ${path}`, {
      field,
      fix: `check the path: give --db (or REFINERY_DB) the file your runs were stored in${field === "--db" && !db ? " (none yet: start with `refinery run`)" : ""}`,
    });
  }
  return settings;
}

export const RUN_FLAGS = {
  file: { type: "string", short: "f" },
  context: { type: "string" },
  config: { type: "string", short: "c" },
  "max-iterations": { type: "string" },
  "token-budget": { type: "string" },
  "score-threshold": { type: "string" },
  "no-critique": { type: "boolean" },
  strategy: { type: "string", short: "s" },
  verifier: { type: "string", multiple: true },
  "expect-number": { type: "string" },
  expect: { type: "string" },
  tolerance: { type: "string" },
  "must-match": { type: "string", multiple: true },
  "must-not-match": { type: "string", multiple: true },
  "json-schema": { type: "string" },
  "min-words": { type: "string" },
  "max-words": { type: "string" },
  contains: { type: "string", multiple: true },
  judge: { type: "string" },
  webhook: { type: "string" },
  model: { type: "string" },
  "critique-model": { type: "string" },
  offline: { type: "boolean" },
  seed: { type: "string" },
  thread: { type: "string" },
  assistant: { type: "string" },
  db: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

function num(flags: Flags, name: string, kind: "int" | "float"): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (
    typeof raw !== "string" ||
    raw.trim() === "" ||
    !Number.isFinite(n) ||
    (kind === "int" && !Number.isInteger(n))
  ) {
    throw new RefineryError(
      "invalid_input",
      `expected ${kind === "int" ? "an integer" : "a number"}, got "${String(raw)}"`,
      {
        field: `--${name}`,
        fix: `pass --${name} ${kind === "int" ? "3" : "0.8"}`,
      },
    );
  }
  return n;
}

function list(flags: Flags, name: string): string[] {
  const v = flags[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** Options from flags; they are layered over the config file's options by the caller. */
export function optionsFromFlags(flags: Flags): RefineOptions {
  const verifiers: unknown[] = [];
  list(flags, "verifier").forEach((raw, i) => {
    try {
      verifiers.push(JSON.parse(raw));
    } catch {
      throw new RefineryError("invalid_input", `--verifier #${i + 1} is not valid JSON`, {
        field: "--verifier",
        fix: `pass a JSON spec, e.g. --verifier '{"kind":"regex","mustMatch":["^Answer:"]}'`,
      });
    }
  });
  const tolerance = num(flags, "tolerance", "float");
  if (flags["expect-number"] !== undefined) {
    const expected = num(flags, "expect-number", "float");
    verifiers.push({
      kind: "answer_match",
      expected,
      mode: "numeric",
      ...(tolerance === undefined ? {} : { tolerance }),
    });
  }
  if (typeof flags.expect === "string")
    verifiers.push({ kind: "answer_match", expected: flags.expect, mode: "exact" });
  const mustMatch = list(flags, "must-match");
  const mustNotMatch = list(flags, "must-not-match");
  if (mustMatch.length || mustNotMatch.length)
    verifiers.push({ kind: "regex", mustMatch, mustNotMatch });
  if (typeof flags["json-schema"] === "string") {
    const path = flags["json-schema"];
    let schema: unknown;
    try {
      schema = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new RefineryError(
        "invalid_input",
        `cannot read a JSON Schema from ${path} (${(err as Error).message.split("\n")[0]})`,
        {
          field: "--json-schema",
          fix: "pass the path of a JSON file holding a JSON Schema document",
        },
      );
    }
    verifiers.push({ kind: "json_schema", schema });
  }
  const minWords = num(flags, "min-words", "int");
  const maxWords = num(flags, "max-words", "int");
  const contains = list(flags, "contains");
  if (minWords !== undefined || maxWords !== undefined || contains.length) {
    verifiers.push({
      kind: "constraints",
      unit: "words",
      minLength: minWords,
      maxLength: maxWords,
      ...(contains.length ? { contains } : {}),
    });
  }
  if (typeof flags.judge === "string") verifiers.push({ kind: "llm_judge", rubric: flags.judge });
  if (typeof flags.webhook === "string") verifiers.push({ kind: "webhook", url: flags.webhook });

  const seed = num(flags, "seed", "int");
  const models: NonNullable<RefineOptions["models"]> = {};
  if (typeof flags.model === "string") models.default = { model: flags.model };
  if (flags.offline || seed !== undefined) {
    models.default = {
      ...models.default,
      provider: "simulated",
      ...(seed === undefined ? {} : { simulated: { seed } }),
    };
  }
  if (typeof flags["critique-model"] === "string")
    models.critique = { model: flags["critique-model"] };

  const options: RefineOptions = {
    maxIterations: num(flags, "max-iterations", "int"),
    tokenBudget: num(flags, "token-budget", "int"),
    scoreThreshold: num(flags, "score-threshold", "float"),
    ...(flags["no-critique"] ? { critique: false } : {}),
    ...(typeof flags.strategy === "string"
      ? { strategy: flags.strategy as RefineOptions["strategy"] }
      : {}),
    ...(verifiers.length ? { verifiers } : {}),
    ...(Object.keys(models).length ? { models } : {}),
  };
  for (const k of Object.keys(options) as (keyof RefineOptions)[])
    if (options[k] === undefined) delete options[k];
  try {
    return parseRefineOptions(options);
  } catch (err) {
    // Name the flag the user typed, not the option it became (maxIterations -> --max-iterations).
    if (err instanceof RefineryError && err.field) {
      const top = err.field.split(/[.[]/)[0] ?? err.field;
      const flag = `--${top.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      throw new RefineryError(err.code, err.message, {
        field: top === "verifiers" || top === "models" ? err.field : flag,
        fix: err.fix,
      });
    }
    throw err;
  }
}
