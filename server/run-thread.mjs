// Entry of a run thread or an eval thread (worker_threads). The server's TypeScript runs without a
// build step, and a worker does not inherit the tsx loader of the thread that started it, so this
// file loads workerData.entry (run-thread.ts, eval-thread.ts) through tsx's API.
import { workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

await tsImport(workerData.entry, import.meta.url);
