// The commands of the `refinery` command line (main.ts parses the command name and loads this
// module for every command but --help and --version): `run` refines a task with live progress,
// `resume` continues an interrupted run from its last checkpoint, `approve|reject|edit|abort`
// answer a run waiting for a reviewer, and eval, lessons, export, keys.
import { attemptJournalOf } from "../core/models/attempt-journal.ts";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Command } from "@langchain/langgraph";
import type { ApprovalDecision } from "../core/approval.ts";
import {
  mergeRefineOptions,
  refineOptionsFromConfigurable,
  type RefineOptions,
} from "../core/config.ts";
import { loadConfigFile, type ConfigFile } from "../core/config-file.ts";
import { readEnv, unknownEnvWarnings } from "../core/env.ts";
import { isRefineryError, RefineryError } from "../core/errors.ts";
import { PERMISSIVE_POLICY, setOutboundPolicy } from "../core/net/policy.ts";
import type { RefineStateType } from "../core/state.ts";
import type { LessonMemory } from "../core/memory/lessons.ts";
import { createSqliteStorage } from "../core/storage/sqlite/storage.ts";
import type { Storage } from "../core/storage/types.ts";
import { continueAfterModelError, recordFailedAttempts } from "../graphs/continue.ts";
import { openEngine, type Engine } from "../graphs/engine.ts";
import { sqliteLearningSource } from "../core/storage/sqlite/learning-records.ts";
import { openLearning, type OpenedLearning } from "../graphs/learning.ts";
import { beginLocalRun, finishLocalRun } from "../graphs/local-runs.ts";
import { systemAssistantId, type StateSnapshotLike } from "../graphs/registry.ts";
import {
  answerHelp,
  DECISION_COMMANDS,
  decisionFromFlags,
  pendingApproval,
  promptDecision,
  renderWaiting,
  type DecisionCommand,
} from "./approval.ts";
import {
  existingDbSettings,
  optionsFromFlags,
  parseFlags,
  RUN_FLAGS,
  settingsFromFlags,
  type Flags,
} from "./args.ts";
import { evalCommand } from "./eval.ts";
import { keysCommand } from "./keys.ts";
import { exportCommand, lessonsCommand } from "./learning.ts";
import { LiveRenderer, resultJson } from "./render.ts";
import { closest } from "../core/suggest.ts";
import { EXIT, type CliIO } from "./main.ts";

/** Runs `command` (anything but --help and --version, which main.ts answers). */
export async function dispatch(command: string, rest: string[], io: CliIO): Promise<number> {
  // The CLI's user is the operator: its webhooks and verifiers may call any http(s) address.
  setOutboundPolicy(PERMISSIVE_POLICY);
  // Every setting is checked before a command opens anything; a misspelt one is named.
  readEnv(io.env);
  for (const warning of unknownEnvWarnings(io.env))
    io.stderr.write(`refinery: warning: ${warning}\n`);
  if (command === "run") return await runCommand(rest, io);
  if (command === "resume") return await resumeCommand(rest, io);
  if ((DECISION_COMMANDS as readonly string[]).includes(command))
    return await decideCommand(command as DecisionCommand, rest, io);
  if (command === "eval") return await evalCommand(rest, io);
  if (command === "lessons") return await lessonsCommand(rest, io);
  if (command === "export") return await exportCommand(rest, io);
  if (command === "keys") return await keysCommand(rest, io);
  const near = closest(command, COMMANDS);
  throw new RefineryError("invalid_input", `unknown command "${command}"`, {
    fix: near
      ? `did you mean \`refinery ${near}\`? (see refinery --help)`
      : `use one of ${COMMANDS.join(", ")} (see refinery --help)`,
  });
}

const COMMANDS = ["run", "resume", ...DECISION_COMMANDS, "eval", "lessons", "export", "keys"];

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
      --thread UUID          thread to use (default: a new one); a finished thread takes a new task
      --assistant UUID       start from this refine assistant's options (config file < assistant
                             < flags) and record the run under it (default: the refine graph's own)
      --db PATH              SQLite checkpoint file (default REFINERY_DB or ./data/refinery.db)

With approval in the config (approval: {mode: final}), a run stops for a reviewer: on a terminal
it asks what to do; otherwise it prints the draft and exits 4, and the run waits (also for a server
on the same database: GET /approvals) until \`refinery approve|reject|edit|abort THREAD_ID\`.

Exit codes: 0 answer passes every hard verifier; 3 finished, but the best answer fails one;
4 waiting for a reviewer; 1 error (model, storage); 2 invalid input; 130 Ctrl-C.
`;

const RESUME_HELP = `refinery resume THREAD_ID [options]

Continues a run that was interrupted (Ctrl-C, crash, lost connection) from its last checkpoint;
steps already checkpointed are not executed again. A run a model failure stopped early
(stop reason model_error) continues at the step that failed. The run keeps the options it
started with. A run waiting for a reviewer is shown (exit 4): answer it with approve, reject,
edit or abort.
      --db PATH   SQLite checkpoint file (default REFINERY_DB or ./data/refinery.db)
      --json      print one JSON result
  -q, --quiet     print only the final answer
`;

const DECIDE_HELP = `refinery approve|reject|edit|abort THREAD_ID [options]

Answers a run waiting for a reviewer (a run with approval in its options), then continues it:
  approve THREAD_ID [--comment TEXT]        accept the draft as the answer
  reject THREAD_ID --feedback TEXT          revise the draft with this feedback, then verify again
  edit THREAD_ID --text TEXT | --file PATH  this text becomes the draft, verified again
  abort THREAD_ID [--reason TEXT]           end the run without an answer
The thread may have been started by the CLI or by a server on the same database.
      --db PATH   SQLite file (default REFINERY_DB or ./data/refinery.db)
      --json      print one JSON result
  -q, --quiet     print only the final answer
Exit codes as for run: 0, 3, 4 (waiting again, e.g. after a reject), 1, 2.
`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
        { field: "--file", fix: "drop the TASK argument, or drop --file PATH" },
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
  /** Threads, runs and assistants, in the file the server uses. */
  storage: Storage;
}

/**
 * The engine on the SQLite file, with the lessons memory, run records and threads on the same
 * file. `existing`: the command reads what runs stored, so a missing file is an error.
 */
async function openFromFlags(
  flags: Flags,
  io: CliIO,
  file?: ConfigFile,
  existing = false,
): Promise<CliEngine> {
  const settings = existing
    ? existingDbSettings(io.env, flags.db)
    : settingsFromFlags(io.env, flags.db, file);
  const ref: { memory?: LessonMemory } = {};
  const engine = openEngine({
    settings,
    lessons: {
      retrieve: async (assistantId, task, limit) =>
        ref.memory ? ref.memory.retrieve(assistantId ?? REFINE_ASSISTANT, task, limit) : [],
    },
  });
  try {
    const storage = createSqliteStorage(engine.checkpointer.db!);
    const learning = await openLearning(settings, sqliteLearningSource(engine.checkpointer.db!));
    ref.memory = learning.memory;
    return {
      ...engine,
      learning,
      storage,
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

/** A thread's state (LangGraph's StateSnapshot, in the registry's structural type). */
async function stateOf(engine: Engine, threadId: string): Promise<StateSnapshotLike> {
  return (await engine.graph.getState({
    configurable: { thread_id: threadId },
  })) as unknown as StateSnapshotLike;
}

/** When a run has finished (not interrupted), learn from it and keep its outcome for export. */
async function learnFrom(
  engine: CliEngine,
  threadId: string,
  runId: string,
  assistantId: string,
  state: StateSnapshotLike,
  io: CliIO,
): Promise<void> {
  if (state.next.length > 0) return;
  const values = state.values as Record<string, unknown>;
  const options = values.options as { memory?: { enabled?: boolean } } | null;
  try {
    await engine.learning.loop.onRunEnd({
      values,
      run_id: runId,
      thread_id: threadId,
      assistant_id: assistantId,
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
  const { values, positionals } = parseFlags(args, RUN_FLAGS as never, "run");
  const flags = values as Flags;
  if (flags.help) {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  if (typeof flags.thread === "string" && !UUID.test(flags.thread)) {
    throw new RefineryError("invalid_input", `thread id "${flags.thread}" is not a UUID`, {
      field: "--thread",
      fix: "omit --thread for a new thread, or pass a UUID (e.g. from uuidgen): threads are shared with the server, whose thread ids are UUIDs",
    });
  }
  const file = typeof flags.config === "string" ? loadConfigFile(flags.config) : undefined;
  const flagOptions = optionsFromFlags(flags);
  const task = await readTask(positionals, flags, io);
  const engine = await openFromFlags(flags, io, file);
  try {
    const assistant = await assistantFor(
      engine,
      typeof flags.assistant === "string" ? flags.assistant : file?.assistant,
      typeof flags.assistant === "string" ? "--assistant" : "assistant",
    );
    const options: RefineOptions = mergeRefineOptions(file?.refine, assistant.options, flagOptions);
    // Build the settings once before any checkpoint is written, so a bad verifier or model spec
    // fails here with nothing stored.
    const settings = engine.resolve(undefined, options);
    const threadId = typeof flags.thread === "string" ? flags.thread : randomUUID();
    const existing = await stateOf(engine, threadId);
    if (existing.next.length > 0) {
      throw new RefineryError("invalid_input", `thread ${threadId} has an unfinished run`, {
        field: "--thread",
        fix: pendingApproval(existing)
          ? `it waits for a reviewer: \`refinery approve ${threadId}\` (or reject, edit, abort)`
          : `continue it with \`refinery resume ${threadId}\`, or use another --thread`,
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
    return await execute(engine, threadId, existing, { input }, flags, io, {
      maxIterations: settings.limits.maxIterations,
      simulated: simulated.simulated === true,
      assistantId: assistant.id,
    });
  } finally {
    engine.close();
  }
}

const READ_FLAGS = {
  db: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * The assistant a CLI run starts from and is recorded under: `ref` (a UUID, or "refine"), else
 * the refine graph's system assistant. Its options are validated as refine options.
 */
async function assistantFor(
  engine: CliEngine,
  ref: string | undefined,
  field: string,
): Promise<{ id: string; options?: RefineOptions }> {
  if (ref === undefined || ref === "refine" || ref === REFINE_ASSISTANT)
    return { id: REFINE_ASSISTANT };
  const found = UUID.test(ref) ? await engine.storage.assistants.get(ref) : undefined;
  if (!found)
    throw new RefineryError("not_found", `no assistant ${ref} in ${engine.checkpointer.db?.name}`, {
      field,
      fix: "give the UUID of an assistant of the refine graph in this database (GET /assistants on the server), or leave it out",
    });
  if (found.graph_id !== "refine")
    throw new RefineryError(
      "invalid_input",
      `assistant ${ref} is of graph "${found.graph_id}"; the CLI runs the refine graph`,
      { field, fix: "use an assistant of the refine graph, or run this one on the server" },
    );
  return {
    id: found.assistant_id,
    options: refineOptionsFromConfigurable(found.config.configurable),
  };
}

/** The assistant a thread's runs were recorded under (the refine graph's own by default). */
async function threadAssistant(engine: CliEngine, threadId: string): Promise<string> {
  const id = (await engine.storage.threads.get(threadId))?.metadata.assistant_id;
  return typeof id === "string" ? id : REFINE_ASSISTANT;
}

/** The one THREAD_ID a command takes. */
function threadArg(positionals: string[], command: string): string {
  const threadId = positionals[0];
  if (!threadId || positionals.length > 1) {
    throw new RefineryError(
      "invalid_input",
      positionals.length > 1
        ? `expected one THREAD_ID, got ${positionals.length} arguments`
        : "THREAD_ID is missing",
      {
        field: "THREAD_ID",
        fix: `refinery ${command} <thread-id> (printed when the run started${command === "resume" ? "" : '; quote texts: --feedback "..."'})`,
      },
    );
  }
  return threadId;
}

/** The thread's state; not_found when the database has no checkpoint of it. */
async function threadState(engine: CliEngine, threadId: string): Promise<StateSnapshotLike> {
  const state = await stateOf(engine, threadId);
  if (!state.createdAt) {
    throw new RefineryError(
      "not_found",
      `no run with thread id ${threadId} in ${engine.checkpointer.db?.name ?? "the database"}`,
      {
        field: "THREAD_ID",
        fix: "check the id (printed when the run started) and --db / REFINERY_DB",
      },
    );
  }
  // A thread of another graph (a server's declarative or langgraph.json graph): the CLI runs
  // only the refine graph.
  const row = await engine.storage.threads.get(threadId);
  const graphId = row?.metadata.graph_id;
  if (typeof graphId === "string" && graphId !== "refine") {
    throw new RefineryError(
      "invalid_input",
      `thread ${threadId} belongs to graph "${graphId}", which only the server runs`,
      {
        field: "THREAD_ID",
        fix: `use the server: POST /threads/${threadId}/approval, or the console`,
      },
    );
  }
  return state;
}

async function resumeCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags(args, READ_FLAGS, "resume");
  const flags = values as Flags;
  if (flags.help) {
    io.stdout.write(RESUME_HELP);
    return 0;
  }
  const threadId = threadArg(positionals, "resume");
  const engine = await openFromFlags(flags, io, undefined, true);
  try {
    const state = await threadState(engine, threadId);
    const values = state.values as RefineStateType;
    const maxIterations = engine.resolve(undefined, values.options).limits.maxIterations;
    // A run a model failure stopped mid-run continues at the step that failed.
    const again = await continueAfterModelError(engine.graph, {
      configurable: { thread_id: threadId },
    });
    if (again) {
      return await execute(engine, threadId, state, { command: again }, flags, io, {
        maxIterations,
        simulated: values.simulated,
        assistantId: await threadAssistant(engine, threadId),
      });
    }
    const request = pendingApproval(state);
    if (state.next.length === 0 || request) {
      if (!flags.json && !flags.quiet && !request)
        io.stdout.write(`thread ${threadId} already finished; nothing to resume\n`);
      if (request && !flags.json && !flags.quiet) io.stdout.write(renderWaiting(threadId, request));
      return report(threadId, state, flags, io);
    }
    return await execute(engine, threadId, state, {}, flags, io, {
      maxIterations,
      simulated: values.simulated,
      assistantId: await threadAssistant(engine, threadId),
    });
  } finally {
    engine.close();
  }
}

async function decideCommand(command: DecisionCommand, args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      ...READ_FLAGS,
      ...(command === "approve" ? { comment: { type: "string" } } : {}),
      ...(command === "abort" ? { reason: { type: "string" } } : {}),
      ...(command === "reject" ? { feedback: { type: "string" } } : {}),
      ...(command === "edit"
        ? { text: { type: "string" }, file: { type: "string", short: "f" } }
        : {}),
    },
    command,
  );
  const flags = values as Flags;
  if (flags.help) {
    io.stdout.write(DECIDE_HELP);
    return 0;
  }
  const threadId = threadArg(positionals, command);
  const decision = decisionFromFlags(command, flags);
  const engine = await openFromFlags(flags, io, undefined, true);
  try {
    const state = await threadState(engine, threadId);
    if (!pendingApproval(state)) {
      throw new RefineryError("invalid_input", `thread ${threadId} is not waiting for a reviewer`, {
        field: "THREAD_ID",
        fix:
          state.next.length > 0
            ? `it was interrupted mid-run: continue it with \`refinery resume ${threadId}\``
            : "it has finished (someone may have answered already)",
      });
    }
    const values = state.values as RefineStateType;
    const maxIterations = engine.resolve(undefined, values.options).limits.maxIterations;
    return await execute(engine, threadId, state, { decision }, flags, io, {
      maxIterations,
      simulated: values.simulated,
      assistantId: await threadAssistant(engine, threadId),
    });
  } finally {
    engine.close();
  }
}

/**
 * Runs the refine graph on a thread as an ordinary run of the database (see graphs/local-runs.ts):
 * new `input`, a reviewer's `decision`, or neither (continue from the last checkpoint). When the
 * run stops for a reviewer, asks on a terminal and continues with the answer; otherwise prints
 * how to answer and returns EXIT.waiting.
 */
async function execute(
  engine: CliEngine,
  threadId: string,
  before: StateSnapshotLike,
  what: { input?: Record<string, unknown>; decision?: ApprovalDecision; command?: Command },
  flags: Flags,
  io: CliIO,
  opts: { maxIterations: number; simulated: boolean; assistantId: string },
): Promise<number> {
  const { maxIterations, assistantId } = opts;
  const recursionLimit = 4 * maxIterations + 10;
  // assistant_id: the lessons memory the run reads is the assistant's.
  const config = {
    configurable: { thread_id: threadId, assistant_id: assistantId },
    recursionLimit,
  };
  const live = !flags.json && !flags.quiet;
  const interactive = live && Boolean(io.stdin?.isTTY) && Boolean(io.stdout.isTTY);
  const renderer = new LiveRenderer(
    { write: (s) => io.stdout.write(s), isTTY: Boolean(io.stdout.isTTY) },
    maxIterations,
  );
  if (live) renderer.start(threadId, opts.simulated);
  let decision = what.decision;
  let input: Record<string, unknown> | undefined = what.input;
  // A continuation after a model failure (graphs/continue.ts): the first run only.
  let command = what.command;
  let state = before;
  for (;;) {
    const fresh = input !== undefined;
    const run = await beginLocalRun(engine.storage, {
      threadId,
      graphId: "refine",
      assistantId,
      input: input ?? null,
      ...(decision ? { command: { resume: decision } } : {}),
      checkpointBefore:
        (state.config as { configurable?: { checkpoint_id?: string } } | undefined)?.configurable
          ?.checkpoint_id ?? null,
      state,
      recursionLimit,
    });
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once("SIGINT", onSignal);
    let completedSteps = 0;
    try {
      const stream = await engine.graph.stream(
        (decision ? new Command({ resume: decision }) : (command ?? input ?? null)) as Parameters<
          typeof engine.graph.stream
        >[0],
        {
          ...config,
          streamMode: "updates",
          // Commit each step before the next starts: a killed run never redoes a finished step.
          durability: "sync",
          signal: abort.signal,
          metadata: { run_id: run.run_id },
        },
      );
      for await (const chunk of stream) {
        completedSteps++;
        if (live) renderer.update(chunk as never);
      }
    } catch (err) {
      renderer.stop();
      const after = await stateOf(engine, threadId).catch(() => undefined);
      if (abort.signal.aborted) {
        await finishLocalRun(engine.storage, run, after, { cancelled: true });
        io.stderr.write(`refinery: interrupted; continue with \`refinery resume ${threadId}\`\n`);
        return EXIT.interrupted;
      }
      if (fresh && completedSteps === 0 && !state.createdAt) {
        // Nothing was completed on a new thread: drop it, so no half-started thread is left.
        await engine.checkpointer.saver.deleteThread(threadId);
        await engine.storage.threads.delete(threadId);
      } else {
        // The failed step's attempts count in the thread's usage; that step stays next.
        const recorded = await recordFailedAttempts(engine.graph, config, err).catch(() => false);
        const e = err as Error & { code?: unknown };
        const final = recorded ? await stateOf(engine, threadId).catch(() => after) : after;
        await finishLocalRun(engine.storage, run, final, {
          error: {
            error: typeof e.code === "string" ? e.code : (e.name ?? "Error"),
            message: String(e.message ?? err).split("\n")[0]!,
          },
        });
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
    state = await stateOf(engine, threadId);
    await finishLocalRun(engine.storage, run, state);
    await learnFrom(engine, threadId, run.run_id, assistantId, state, io);
    const request = pendingApproval(state);
    if (!request) break;
    if (!interactive) {
      if (live) io.stdout.write(renderWaiting(threadId, request));
      return report(threadId, state, flags, io, !live);
    }
    renderer.stop();
    io.stdout.write(renderWaiting(threadId, request));
    decision = await promptDecision(io);
    if (!decision) {
      io.stdout.write(`\nleft waiting; answer later with:\n${answerHelp(threadId)}\n`);
      return EXIT.waiting;
    }
    input = undefined;
    command = undefined;
  }
  const values = state.values as RefineStateType;
  // Every model attempt of a run that reached its end is in a checkpoint now.
  if (state.next.length === 0) {
    try {
      attemptJournalOf(engine.checkpointer.saver)?.clear(threadId);
    } catch {
      // Only the journal's leftover rows stay; the next run of the thread drops them.
    }
  }
  if (live) renderer.finish(values);
  return report(threadId, state, flags, io, !live);
}

function report(
  threadId: string,
  snapshot: StateSnapshotLike,
  flags: Flags,
  io: CliIO,
  print = true,
): number {
  const state = snapshot.values as RefineStateType;
  const request = pendingApproval(snapshot);
  if (print) {
    if (flags.json)
      io.stdout.write(
        `${JSON.stringify(
          {
            ...resultJson(threadId, state),
            status: request ? "waiting_for_approval" : "finished",
            ...(request ? { approval: request } : {}),
          },
          null,
          2,
        )}\n`,
      );
    else if (!request) io.stdout.write(`${state.answer ?? ""}\n`);
  }
  if (request) {
    if (flags.quiet)
      io.stderr.write(
        `refinery: waiting for a reviewer: refinery approve ${threadId} (or reject, edit, abort)\n`,
      );
    return EXIT.waiting;
  }
  if (state.error && state.stopReason === "model_error")
    io.stderr.write(`refinery: stopped early: ${state.error.message}\n`);
  // A person's approval accepts the answer; otherwise every hard verifier must pass.
  if (state.stopReason === "approved") return EXIT.ok;
  const hardOk = state.best ? state.best.hardPassed === state.best.hardTotal : false;
  return hardOk ? EXIT.ok : EXIT.failsVerifier;
}
