// An eval thread: runs the evaluation jobs the server thread hands it (eval-threads.ts) on its own
// engine (the server's settings, outbound policy and model provider, REFINERY_PROVIDER_MODULE
// included; the refine graph; an in-memory checkpointer, since evaluation threads are scratch)
// and sends back each job's acceptance, records, progress and end. A job's graph runs never
// touch the server thread or the database.
import { parentPort, threadId, workerData } from "node:worker_threads";
import { openEngine } from "../graphs/engine.ts";
import { engineRunner, runEvalJob } from "../graphs/eval/index.ts";
import type { Logger } from "./log.ts";
import { prepareGraphThread } from "./runtime.ts";
import {
  toWireError,
  type EvalThreadData,
  type FromEvalThread,
  type ToEvalThread,
} from "./eval-protocol.ts";

const port = parentPort;
if (!port) throw new Error("eval-thread.ts runs only as a worker thread");
const data = workerData as EvalThreadData;

// Messages go out once per turn of the event loop, in order: a job's "ended" never overtakes its
// records, and a burst of records costs one message.
let outbox: FromEvalThread[] = [];
const send = (message: FromEvalThread) => {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(message);
};
function flush(): void {
  const batch = outbox;
  outbox = [];
  if (batch.length) port!.postMessage(batch);
}

const log: Logger = (level, msg, fields) =>
  send({ type: "log", level, msg, fields: { ...fields, eval_thread: data.index } });

try {
  // The same settings, outbound policy and provider as the server's other graph threads.
  const { settings, provider } = await prepareGraphThread(data.env);
  const engine = openEngine({ settings, provider, memory: true });
  const runner = engineRunner(engine);
  const controllers = new Map<string, AbortController>();

  port.on("message", (message: ToEvalThread) => {
    switch (message.type) {
      case "start": {
        const { jobId } = message;
        const controller = new AbortController();
        controllers.set(jobId, controller);
        runEvalJob(message.spec, runner, {
          existing: new Map(message.existing),
          signal: controller.signal,
          onAccepted: () => send({ type: "accepted", jobId }),
          onRecord: (record, seed) =>
            send({ type: "record", jobId, record, ...(seed === undefined ? {} : { seed }) }),
          onProgress: (progress) => send({ type: "progress", jobId, progress }),
        })
          .then(
            (summary) => send({ type: "ended", jobId, summary }),
            (err: unknown) => send({ type: "ended", jobId, error: toWireError(err) }),
          )
          .finally(() => controllers.delete(jobId));
        break;
      }
      case "cancel":
        controllers.get(message.jobId)?.abort("cancelled");
        break;
      case "close":
        for (const controller of controllers.values()) controller.abort("shutdown");
        engine.close();
        flush();
        port.close();
        break;
    }
  });
  log("debug", "eval thread ready", { thread_id: threadId });
  send({ type: "ready", threadId });
} catch (err) {
  send({ type: "failed", error: toWireError(err) });
}
