// The `refinery` command line: `run` refines a task with live progress, `resume` continues an
// interrupted run from its last checkpoint, `approve|reject|edit|abort` answer a run waiting for a
// reviewer. Every run is an ordinary thread + run in the database the server uses. Errors are one
// line on stderr with a non-zero exit (EXIT below).
//
// This module stays light: `--help` and `--version` answer without loading the graph stack
// (LangGraph, storage, models); every other command imports it from commands.ts first.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isRefineryError } from "../core/errors.ts";
import { ROOT } from "../core/paths.ts";

const MAIN_HELP = `refinery — self-refining LLM workflows

Usage:
  refinery run [TASK] [options]       refine a task (TASK, --file PATH, or stdin)
  refinery resume THREAD_ID [options] continue an interrupted run from its last checkpoint
  refinery approve|reject|edit|abort THREAD_ID [options]   answer a run waiting for a reviewer
  refinery eval --dataset PATH [options] compare strategies on a JSONL dataset (resumable)
  refinery lessons list|search|add|edit|pin|unpin|delete   the lessons memory
  refinery export --format sft|dpo|pasr [--out FILE]        training data from stored runs
  refinery keys new|hash              API keys for the server (REFINERY_API_KEYS)
  refinery COMMAND --help             options of a command
  refinery --version                  the version

Exit codes: 0 the answer passes every hard verifier; 3 finished, but the best answer fails one;
4 waiting for a reviewer (answer with approve, reject, edit or abort); 1 error (model, storage, a
conflict with another process); 2 invalid input (bad flag or value, unknown thread, a thread not in
the state the command needs); 130 stopped by Ctrl-C (continue with resume).

Environment:
  OPENAI_API_KEY    use an OpenAI-compatible endpoint (without it: the offline simulated model)
  OPENAI_BASE_URL   endpoint base URL, e.g. http://127.0.0.1:8000/v1
  REFINERY_MODEL    default model name (gpt-4o-mini)
  REFINERY_DB       SQLite checkpoint file (./data/refinery.db)
  REFINERY_MEMORY   on (default) | off: learn lessons from runs and use them in prompts
  REFINERY_STORE_URL  postgres://... to keep lessons in Postgres instead of the SQLite file
`;

/** Exit codes (README, Command line). */
export const EXIT = {
  ok: 0,
  error: 1,
  invalid: 2,
  failsVerifier: 3,
  waiting: 4,
  interrupted: 130,
} as const;

export interface CliIO {
  stdout: { write(s: string): void; isTTY?: boolean };
  stderr: { write(s: string): void };
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === "--help" || command === "-h" || command === "help") {
      io.stdout.write(MAIN_HELP);
      return command ? 0 : 2;
    }
    if (command === "--version" || command === "-V" || command === "version") {
      io.stdout.write(`refinery ${version()}\n`);
      return 0;
    }
    const { dispatch } = await import("./commands.ts");
    return await dispatch(command, rest, io);
  } catch (err) {
    return reportError(err, io);
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/**
 * Invalid input: a bad flag or value, an unknown thread or lesson. A conflict with another
 * process (a busy thread, an approval answered first, a configuration mismatch) is an error.
 */
const INVALID_CODES = new Set(["invalid_input", "invalid_config", "not_found"]);

function reportError(err: unknown, io: CliIO): number {
  if (isRefineryError(err)) {
    io.stderr.write(`refinery: ${err.toLine()}\n`);
    return INVALID_CODES.has(err.code) ? EXIT.invalid : EXIT.error;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.stderr.write(`refinery: ${message.split("\n")[0]}\n`);
  return /Unknown option|Unexpected argument|argument missing/i.test(message) ? 2 : 1;
}
