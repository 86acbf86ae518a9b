// Entry of a run thread or an eval thread (worker_threads) run from the TypeScript sources: a
// worker does not inherit the tsx loader of the thread that started it, so this file loads
// workerData.entry (run-thread.ts, eval-thread.ts) through tsx's API. Run from the build (dist/),
// a thread starts with the compiled entry instead (server/thread-entry.ts).
import { workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

await tsImport(workerData.entry, import.meta.url);
