// A run thread: executes the runs the server thread hands it (run-threads.ts), on its own engine,
// graph registry and connection to the same database (SQLite file or Postgres), and sends back what the server thread
// needs: every stream chunk (already serialized), log entries and each run's outcome.
import { parentPort, workerData } from "node:worker_threads";
import type { CompactionAware } from "../core/storage/checkpoint-admin.ts";
import { useWriterTurn } from "../core/storage/sqlite/writer-turn.ts";
import {
  isTransientStorageFailure,
  looksLikeConnectionFailure,
} from "../core/storage/transient.ts";
import type { Run } from "../core/storage/types.ts";
import type { Logger } from "./log.ts";
import { RunRunner, type RunEventSink } from "./run-runner.ts";
import { openRuntime } from "./runtime.ts";
import { serializeError, toJson } from "./serde.ts";
import type { FromThread, RunThreadData, ToThread } from "./run-threads.ts";

const port = parentPort;
if (!port) throw new Error("run-thread.ts runs only as a worker thread");
const data = workerData as RunThreadData;

// Messages go out once per turn of the event loop, in order, so a run's many chunks cost one
// message; a run's "done" never overtakes its chunks.
let outbox: FromThread[] = [];
const send = (message: FromThread) => {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(message);
};
function flush(): void {
  const batch = outbox;
  outbox = [];
  if (batch.length) port!.postMessage(batch);
}

const log: Logger = (level, msg, fields) =>
  send({ type: "log", level, msg, fields: { ...fields, run_thread: data.index } });
const sink: RunEventSink = {
  open: (runId, attempt) => send({ type: "open", runId, attempt }),
  publish: (runId, event, chunk) => send({ type: "event", runId, event, json: toJson(chunk) }),
};

useWriterTurn(data.writerTurn);

try {
  const runtime = await openRuntime({
    env: data.env,
    configPath: data.configPath,
    log,
    thread: true,
  });
  const runner = new RunRunner({
    storage: runtime.storage,
    registry: runtime.registry,
    checkpointer: runtime.saver,
    checkpoints: runtime.checkpoints,
    log,
    sink,
    limits: data.limits,
    store: runtime.userStore,
  });
  const controllers = new Map<string, AbortController>();
  const running = new Set<Promise<void>>();
  // Graph changes apply in the order they were sent, before any run sent after them.
  let graphsReady: Promise<void> = Promise.resolve();

  const execute = (run: Run) => {
    const controller = new AbortController();
    controllers.set(run.run_id, controller);
    const task = graphsReady
      .then(() => runner.execute(run, controller.signal))
      .then(
        // The server thread compacts the thread's checkpoints (RunExecutor.execute).
        (outcome) => send({ type: "done", runId: run.run_id, outcome }),
        (err: unknown) =>
          send({
            type: "done",
            runId: run.run_id,
            failure: serializeError(err),
            storageLost: isTransientStorageFailure(err),
          }),
      )
      .finally(() => {
        controllers.delete(run.run_id);
        running.delete(task);
      });
    running.add(task);
  };

  port.on("message", (message: ToThread) => {
    switch (message.type) {
      case "run":
        execute(message.run);
        break;
      case "abort":
        controllers.get(message.runId)?.abort(message.reason);
        break;
      case "graph": {
        const graphId = message.graphId;
        graphsReady = graphsReady
          .then(() => runtime.graphSpecs.reload(graphId))
          .catch((err: unknown) =>
            log("error", "run thread could not reload a graph", {
              graph_id: graphId,
              error: serializeError(err),
            }),
          );
        break;
      }
      case "lessons":
        runtime.learning.memory?.forget(message.assistantId);
        break;
      case "compacted":
        (runtime.saver as Partial<CompactionAware>).compacted?.(message.threadId);
        break;
      case "close":
        void Promise.allSettled([...running])
          .then(() => runtime.close())
          .finally(() => {
            flush();
            port.close();
          });
        break;
    }
  });
  send({ type: "ready" });
  // The pool's watchdog reads these: a step that never yields stops them, and the thread is
  // replaced after REFINERY_STEP_TIMEOUT_MS. Unref'd: a closing thread exits with it running.
  setInterval(
    () => port.postMessage([{ type: "beat" }] satisfies FromThread[]),
    data.beatMs,
  ).unref();
} catch (err) {
  // Retryable: the database did not answer (the pool starts the thread again after a while).
  send({ type: "failed", error: serializeError(err), retryable: looksLikeConnectionFailure(err) });
}
