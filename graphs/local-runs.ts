// Runs that this process executes itself (the CLI), recorded as ordinary threads and runs in the
// storage the server uses (the same SQLite file): the system assistant of the graph, a thread row
// (created on first use), a run row inserted "running" so no server executor ever claims it, and
// at the end the run's status with the thread's snapshot (values, interrupts, status) as the
// server's runner writes it. So GET /threads/{id}, /approvals and the console see CLI threads,
// and a server over the same file can answer their approvals (and the other way round).
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { RefineryError } from "../core/errors.ts";
import type { Run, Storage, ThreadSnapshot } from "../core/storage/types.ts";
import { systemAssistantId, type StateSnapshotLike } from "./registry.ts";

export interface LocalRunStart {
  threadId: string;
  graphId: string;
  /** The assistant the run is recorded under (default: the graph's system assistant). */
  assistantId?: string;
  /** What the run executes: new input, a resume command, or null (continue from the checkpoint). */
  input: Record<string, unknown> | null;
  command?: { resume: unknown };
  /** The thread's latest checkpoint id before the run (null: none yet). */
  checkpointBefore: string | null;
  /** The thread's state now, to record the snapshot of a thread that has no row yet. */
  state: StateSnapshotLike;
  recursionLimit?: number;
}

/** The metadata a CLI run carries: which process executes it (to adopt it once it is gone). */
interface LocalOwner {
  source: "cli";
  pid: number;
  host: string;
}

function ownerOf(run: Run): LocalOwner | undefined {
  const m = run.metadata as Partial<LocalOwner>;
  return m.source === "cli" && typeof m.pid === "number" && typeof m.host === "string"
    ? (m as LocalOwner)
    : undefined;
}

/**
 * True when `run` is executed by a CLI process on this machine that is still alive. A server
 * starting up leaves such runs alone instead of re-queueing them: their process finishes them.
 * (A CLI run recorded on another host name is re-queued, as any run left running.)
 */
export function isLiveLocalRun(run: Run): boolean {
  const owner = ownerOf(run);
  if (!owner || run.status !== "running") return false;
  if (owner.host !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** True when `run` was started by a CLI process on this machine that no longer exists. */
function isOrphan(run: Run): boolean {
  const owner = ownerOf(run);
  if (!owner || run.status !== "running" || owner.host !== hostname()) return false;
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** A thread's snapshot from its state, as the server's runner records it after a run. */
export function snapshotFromState(
  state: StateSnapshotLike | undefined,
  error?: { error: string; message: string } | null,
  cancelled = false,
): ThreadSnapshot {
  const values = state
    ? (JSON.parse(JSON.stringify(state.values ?? null)) as Record<string, unknown> | null)
    : null;
  const interrupts: Record<string, unknown[]> = {};
  if (state && !cancelled) {
    for (const t of state.tasks) {
      if (t.interrupts?.length)
        interrupts[t.id] = t.interrupts.map((i) => ({ id: i.id, value: i.value }));
    }
  }
  let status: ThreadSnapshot["status"] = "idle";
  if (error) status = "error";
  else if (state && !cancelled && state.next.length > 0) status = "interrupted";
  return { status, values, interrupts, error: error ?? null };
}

/**
 * Records the start of a run this process executes: the graph's system assistant (as the server
 * creates it), the thread, and the run, "running". A resume (`command`) is created only while the
 * thread waits on its interrupt, in the same transaction, so of a CLI and a server answering one
 * approval exactly one wins. A run of a CLI process that died (same host, pid gone) is adopted:
 * its row is reused and finished by this process.
 */
export async function beginLocalRun(storage: Storage, start: LocalRunStart): Promise<Run> {
  const assistantId = start.assistantId ?? systemAssistantId(start.graphId);
  if (assistantId === systemAssistantId(start.graphId))
    await storage.assistants.create(
      {
        assistant_id: assistantId,
        graph_id: start.graphId,
        name: start.graphId,
        metadata: { created_by: "system" },
      },
      "do_nothing",
    );
  const existing = await storage.threads.get(start.threadId);
  if (!existing) {
    await storage.threads.create({ thread_id: start.threadId, metadata: {} }, "do_nothing");
    // A thread the CLI ran before its runs were recorded: its row starts from its checkpoint.
    if (start.state.createdAt)
      await storage.threads.setSnapshot(start.threadId, snapshotFromState(start.state));
  }
  let inflight = await storage.runs.inflight(start.threadId);
  const orphan = inflight.length === 1 && isOrphan(inflight[0]!) ? inflight[0] : undefined;
  if (orphan && !start.command) return orphan;
  if (orphan) {
    // It got as far as its checkpoints say (here: the interrupt being answered).
    await finishLocalRun(storage, orphan, start.state);
    inflight = [];
  }
  if (inflight.length > 0) {
    const other = inflight[0]!;
    const where = ownerOf(other)
      ? `another refinery process (pid ${ownerOf(other)!.pid})`
      : "the server";
    throw new RefineryError(
      "conflict",
      `thread ${start.threadId} has a run in progress in ${where} (run ${other.run_id})`,
      {
        field: "THREAD_ID",
        fix: "wait for it to finish (or cancel it on the server) and try again",
      },
    );
  }
  const runId = randomUUID();
  const metadata: LocalOwner = { source: "cli", pid: process.pid, host: hostname() };
  const result = await storage.runs.create(
    {
      run_id: runId,
      thread_id: start.threadId,
      assistant_id: assistantId,
      graph_id: start.graphId,
      metadata: { ...metadata },
      multitask_strategy: "reject",
      status: "running",
      kwargs: {
        input: start.input,
        command: start.command ?? null,
        config: {
          ...(start.recursionLimit ? { recursion_limit: start.recursionLimit } : {}),
          configurable: {
            graph_id: start.graphId,
            assistant_id: assistantId,
            thread_id: start.threadId,
          },
          metadata: {},
        },
        stream_mode: ["values"],
        // Recorded now, so a server that finds this run "running" after a crash continues it
        // from its last checkpoint instead of feeding it its input again.
        checkpoint_before: start.checkpointBefore,
      },
    },
    { rejectIfInflight: true, requireInterrupted: start.command !== undefined },
  );
  if (result.created) return result.run;
  throw new RefineryError(
    "conflict",
    result.reason === "not_interrupted"
      ? `thread ${start.threadId} is not waiting for a reviewer any more: someone answered first`
      : `thread ${start.threadId} has a run in progress`,
    {
      field: "THREAD_ID",
      fix: `see where it stands with \`refinery resume ${start.threadId}\` (or GET /threads/${start.threadId})`,
    },
  );
}

/** Ends a run begun with beginLocalRun: its status and its thread's snapshot, in one step. */
export async function finishLocalRun(
  storage: Storage,
  run: Run,
  state: StateSnapshotLike | undefined,
  outcome: { error?: { error: string; message: string }; cancelled?: boolean } = {},
): Promise<void> {
  const status = outcome.error ? "error" : outcome.cancelled ? "interrupted" : "success";
  await storage.runs.finish(run.run_id, status, outcome.error ?? null, {
    threadId: run.thread_id,
    snapshot: snapshotFromState(state, outcome.error, outcome.cancelled),
  });
}
