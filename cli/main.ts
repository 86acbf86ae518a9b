// The `refinery` command line: `run` refines a task with live progress, `resume` continues an
// interrupted run from its last checkpoint. Errors are one line on stderr with a non-zero exit.
import { randomUUID } from "node:crypto";
import type { Command } from "@langchain/langgraph";
import { readFileSync } from "node:fs";
import { mergeRefineOptions, type RefineOptions } from "../core/config.ts";
import { loadConfigFile, type ConfigFile } from "../core/config-file.ts";
import { isRefineryError, RefineryError } from "../core/errors.ts";
import { PERMISSIVE_POLICY, setOutboundPolicy } from "../core/net/policy.ts";
import type { RefineStateType } from "../core/state.ts";
import type { LessonMemory } from "../core/memory/lessons.ts";
import { continueAfterModelError, recordFailedAttempts } from "../graphs/continue.ts";
import { openEngine, type Engine } from "../graphs/engine.ts";
import { openLearning, type OpenedLearning } from "../graphs/learning.ts";
import { systemAssistantId } from "../graphs/registry.ts";
import { optionsFromFlags, parseFlags, RUN_FLAGS, settingsFromFlags, type Flags } from "./args.ts";
import { evalCommand } from "./eval.ts";
import { keysCommand } from "./keys.ts";
import { exportCommand, lessonsCommand } from "./learning.ts";
import { LiveRenderer, resultJson } from "./render.ts";

const MAIN_HELP = `refinery — self-refining LLM workflows

Usage:
  refinery run [TASK] [options]       refine a task (TASK, --file PATH, or stdin)
  refinery resume THREAD_ID [options] continue an interrupted run from its last checkpoint
  refinery eval --dataset PATH [options] compare strategies on a JSONL dataset (resumable)
  refinery lessons list|search|add|edit|pin|unpin|delete   the lessons memory
  refinery export --format sft|dpo|pasr [--out FILE]        training data from stored runs
  refinery keys new|hash              API keys for the server (REFINERY_API_KEYS)
  refinery COMMAND --help             options of a command

Environment:
  OPENAI_API_KEY    use an OpenAI-compatible endpoint (without it: the offline simulated model)
  OPENAI_BASE_URL   endpoint base URL, e.g. http://127.0.0.1:8000/v1
  REFINERY_MODEL    default model name (gpt-4o-mini)
  REFINERY_DB       SQLite checkpoint file (./data/refinery.db)
  REFINERY_MEMORY   on (default) | off: learn lessons from runs and use them in prompts
  REFINERY_STORE_URL  postgres://... to keep lessons in Postgres instead of the SQLite file
`;

const RUN_HELP = `refinery run [TASK] [options]

Task:   TASK argument, --file PATH, or standard input ("-" or no TASK with piped input).
  -f, --file PATH            read the task from a file
      --context TEXT         extra context for every prompt
  -c, --config PATH          JSON/YAML config file (limits, verifiers, prompts, models, db)
Limits:
      --max-iterations N     maximum number of drafts (default 3)
      --token-budget N       stop before spending more than N tokens (retries included)
      --score-threshold X    accept at this score once hard verifiers pass (default 0.8)
      --no-critique          skip the LLM critique (verifiers only)
  -s, --strategy NAME        vanilla | self-refine (default) | proactive | pasr
Verifiers (repeatable where marked +):
      --expect-number X      final answer must equal X (numeric; --tolerance T)
      --expect TEXT          final answer must equal TEXT (exact, case-insensitive)
      --must-match RE  +     draft must match the regex
      --must-not-match RE +  draft must not match the regex
      --json-schema PATH     draft must be JSON valid against the schema file
      --min-words N / --max-words N / --contains TEXT +
      --judge RUBRIC         LLM judge (soft) grading against the rubric
      --webhook URL          POST the draft to URL, expect {pass, score, feedback}
      --verifier JSON  +     any verifier spec as JSON
Models:
      --model NAME           model for every role; --critique-model NAME for the critic
      --offline              use the offline simulated model even if OPENAI_API_KEY is set
      --seed N               seed of the simulated model (implies --offline)
Output:
      --json                 print one JSON result instead of live progress
  -q, --quiet                print only the final answer
      --thread ID            thread id to use (default: a new UUID)
      --db PATH              SQLite checkpoint file (default REFINERY_DB or ./data/refinery.db)

Exit codes: 0 answer passes every hard verifier; 3 finished, but the best answer fails one;
1 error (model, storage); 2 invalid input.
`;

const RESUME_HELP = `refinery resume THREAD_ID [options]

Continues a run that was interrupted (Ctrl-C, crash, lost connection) from its last checkpoint;
steps already checkpointed are not executed again. A run a model failure stopped early
(stop reason model_error) continues at the step that failed. The run keeps the options it
started with.
      --db PATH   SQLite checkpoint file (default REFINERY_DB or ./data/refinery.db)
      --json      print one JSON result
  -q, --quiet     print only the final answer
`;

export interface CliIO {
  stdout: { write(s: string): void; isTTY?: boolean };
  stderr: { write(s: string): void };
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  // The CLI's user is the operator: its webhooks and verifiers may call any http(s) address.
  setOutboundPolicy(PERMISSIVE_POLICY);
  try {
    if (!command || command === "--help" || command === "-h" || command === "help") {
      io.stdout.write(MAIN_HELP);
      return command ? 0 : 2;
    }
    if (command === "run") return await runCommand(rest, io);
    if (command === "resume") return await resumeCommand(rest, io);
    if (command === "eval") return await evalCommand(rest, io);
    if (command === "lessons") return await lessonsCommand(rest, io);
    if (command === "export") return await exportCommand(rest, io);
    if (command === "keys") return await keysCommand(rest, io);
    throw new RefineryError("invalid_input", `unknown command "${command}"`, {
      fix: "use run, resume, eval, lessons, export or keys (see refinery --help)",
    });
  } catch (err) {
    return reportError(err, io);
  }
}

function reportError(err: unknown, io: CliIO): number {
  if (isRefineryError(err)) {
    io.stderr.write(`refinery: ${err.toLine()}\n`);
    return err.code === "invalid_input" || err.code === "invalid_config" ? 2 : 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.stderr.write(`refinery: ${message.split("\n")[0]}\n`);
  return /Unknown option|Unexpected argument|argument missing/i.test(message) ? 2 : 1;
}

async function readTask(positionals: string[], flags: Flags, io: CliIO): Promise<string> {
  if (positionals.length > 1) {
    throw new RefineryError(
      "invalid_input",
      `expected one TASK argument, got ${positionals.length}`,
      {
        field: "TASK",
        fix: 'quote the task: refinery run "your task"',
      },
    );
  }
  let task: string | undefined = positionals[0];
  if (typeof flags.file === "string") {
    if (task !== undefined)
      throw new RefineryError(
        "invalid_input",
        "give the task either as TASK or with --file, not both",
        { field: "--file" },
      );
    try {
      task = readFileSync(flags.file, "utf8");
    } catch (err) {
      throw new RefineryError(
        "invalid_input",
        `cannot read task file ${flags.file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        {
          field: "--file",
          fix: "pass the path of an existing text file",
        },
      );
    }
  } else if ((task === undefined || task === "-") && io.stdin && !io.stdin.isTTY) {
    task = await readAll(io.stdin);
  }
  if (task === undefined || task.trim() === "" || task === "-") {
    throw new RefineryError("invalid_input", "task is empty", {
      field: "TASK",
      fix: "pass the task as an argument, with --file PATH, or on standard input",
    });
  }
  return task.trim();
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

interface CliEngine extends Engine {
  learning: OpenedLearning;
}

/** The engine on the SQLite file, with the lessons memory and run records on the same file. */
async function openFromFlags(flags: Flags, io: CliIO, file?: ConfigFile): Promise<CliEngine> {
  const settings = settingsFromFlags(io.env, flags.db, file);
  const ref: { memory?: LessonMemory } = {};
  const engine = openEngine({
    settings,
    lessons: {
      retrieve: async (assistantId, task, limit) =>
        ref.memory ? ref.memory.retrieve(assistantId ?? REFINE_ASSISTANT, task, limit) : [],
    },
  });
  try {
    const learning = await openLearning(settings, engine.checkpointer.db!);
    ref.memory = learning.memory;
    return {
      ...engine,
      learning,
      close: () => {
        void learning.close();
        engine.close();
      },
    };
  } catch (err) {
    engine.close();
    throw err;
  }
}

const REFINE_ASSISTANT = systemAssistantId("refine");

/** When a run has finished (not interrupted), learn from it and keep its outcome for export. */
async function learnFrom(engine: CliEngine, threadId: string, io: CliIO): Promise<void> {
  const state = await engine.graph.getState({ configurable: { thread_id: threadId } });
  if (state.next.length > 0) return;
  const values = state.values as Record<string, unknown>;
  const options = values.options as { memory?: { enabled?: boolean } } | null;
  try {
    await engine.learning.loop.onRunEnd({
      values,
      run_id: randomUUID(),
      thread_id: threadId,
      assistant_id: REFINE_ASSISTANT,
      graph_id: "refine",
      learn: options?.memory?.enabled !== false,
    });
  } catch (err) {
    // Learning is a by-product: a failure is reported, the run's result stands.
    io.stderr.write(
      `refinery: could not learn from the run: ${(err as Error).message.split("\n")[0]}\n`,
    );
  }
}

async function runCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags(args, RUN_FLAGS as never);
  const flags = values as Flags;
  if (flags.help) {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  const file = typeof flags.config === "string" ? loadConfigFile(flags.config) : undefined;
  const options: RefineOptions = mergeRefineOptions(file?.refine, optionsFromFlags(flags));
  const task = await readTask(positionals, flags, io);
  const engine = await openFromFlags(flags, io, file);
  try {
    // Build the settings once before any checkpoint is written, so a bad verifier or model spec
    // fails here with nothing stored.
    const settings = engine.resolve(undefined, options);
    const threadId = typeof flags.thread === "string" ? flags.thread : randomUUID();
    const existing = await engine.graph.getState({ configurable: { thread_id: threadId } });
    if (existing.next.length > 0) {
      throw new RefineryError("conflict", `thread ${threadId} has an unfinished run`, {
        field: "--thread",
        fix: `continue it with \`refinery resume ${threadId}\`, or use another --thread`,
      });
    }
    const input = {
      task,
      context: typeof flags.context === "string" ? flags.context : "",
      options,
    };
    const simulated = engine.provider.forRole("generate", options.models) as {
      simulated?: boolean;
    };
    return await execute(
      engine,
      threadId,
      input,
      flags,
      io,
      settings.limits.maxIterations,
      simulated.simulated === true,
      true,
    );
  } finally {
    engine.close();
  }
}

async function resumeCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    db: { type: "string" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
  });
  const flags = values as Flags;
  if (flags.help) {
    io.stdout.write(RESUME_HELP);
    return 0;
  }
  const threadId = positionals[0];
  if (!threadId || positionals.length > 1) {
    throw new RefineryError("invalid_input", "expected exactly one THREAD_ID", {
      field: "THREAD_ID",
      fix: "refinery resume <thread-id> (printed when the run started)",
    });
  }
  const engine = await openFromFlags(flags, io);
  try {
    const config = { configurable: { thread_id: threadId } };
    const state = await engine.graph.getState(config);
    if (!state.createdAt) {
      throw new RefineryError(
        "not_found",
        `no run with thread id ${threadId} in ${engine.checkpointer.db?.name ?? "the database"}`,
        {
          field: "THREAD_ID",
          fix: "check the id and --db / REFINERY_DB",
        },
      );
    }
    const values = state.values as RefineStateType;
    const maxIterations = engine.resolve(undefined, values.options).limits.maxIterations;
    // A run a model failure stopped mid-run continues at the step that failed.
    const again = await continueAfterModelError(engine.graph, config);
    if (again) {
      return await execute(
        engine,
        threadId,
        again,
        flags,
        io,
        maxIterations,
        values.simulated,
        false,
      );
    }
    if (state.next.length === 0) {
      if (!flags.json && !flags.quiet)
        io.stdout.write(`thread ${threadId} already finished; nothing to resume\n`);
      return report(threadId, values, flags, io, maxIterations);
    }
    return await execute(engine, threadId, null, flags, io, maxIterations, values.simulated, false);
  } finally {
    engine.close();
  }
}

async function execute(
  engine: CliEngine,
  threadId: string,
  input: Record<string, unknown> | Command | null,
  flags: Flags,
  io: CliIO,
  maxIterations: number,
  simulated: boolean,
  fresh: boolean,
): Promise<number> {
  const config = { configurable: { thread_id: threadId }, recursionLimit: 4 * maxIterations + 10 };
  const live = !flags.json && !flags.quiet;
  const renderer = new LiveRenderer(
    { write: (s) => io.stdout.write(s), isTTY: Boolean(io.stdout.isTTY) },
    maxIterations,
  );
  if (live) renderer.start(threadId, simulated);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  let completedSteps = 0;
  try {
    const stream = await engine.graph.stream(input as Parameters<typeof engine.graph.stream>[0], {
      ...config,
      streamMode: "updates",
      // Commit each step before the next starts: a killed run never redoes a finished step.
      durability: "sync",
      signal: abort.signal,
    });
    for await (const chunk of stream) {
      completedSteps++;
      if (live) renderer.update(chunk as never);
    }
  } catch (err) {
    renderer.stop();
    if (abort.signal.aborted) {
      io.stderr.write(`refinery: interrupted; continue with \`refinery resume ${threadId}\`\n`);
      return 130;
    }
    // Nothing was completed: drop the input checkpoint so no half-started thread is left behind.
    if (fresh && completedSteps === 0) await engine.checkpointer.saver.deleteThread(threadId);
    else {
      // The failed step's attempts count in the thread's usage; that step stays next.
      await recordFailedAttempts(engine.graph, config, err).catch(() => false);
      if (!isRefineryError(err) || err.retryable) {
        io.stderr.write(
          `refinery: the run stopped at a checkpoint; continue with \`refinery resume ${threadId}\`\n`,
        );
      }
    }
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
  }
  await learnFrom(engine, threadId, io);
  const state = (await engine.graph.getState(config)).values as RefineStateType;
  if (live) renderer.finish(state);
  return report(threadId, state, flags, io, maxIterations, !live);
}

function report(
  threadId: string,
  state: RefineStateType,
  flags: Flags,
  io: CliIO,
  _max: number,
  print = true,
): number {
  if (print) {
    if (flags.json) io.stdout.write(`${JSON.stringify(resultJson(threadId, state), null, 2)}\n`);
    else io.stdout.write(`${state.answer ?? ""}\n`);
  }
  if (state.error && state.stopReason === "model_error")
    io.stderr.write(`refinery: stopped early: ${state.error.message}\n`);
  const hardOk = state.best ? state.best.hardPassed === state.best.hardTotal : false;
  return hardOk ? 0 : 3;
}
