// Entry of a schema-extraction worker (worker_threads): the server's TypeScript runs without a
// build step and a worker does not inherit tsx, so static.ts is loaded through tsx's API. It
// answers one message: the schemas of workerData.specs, or {error}.
import { parentPort, workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

try {
  const { extractStaticSchemas } = await tsImport("./static.ts", import.meta.url);
  parentPort?.postMessage({ schemas: await extractStaticSchemas(workerData.specs) });
} catch (err) {
  parentPort?.postMessage({ error: String(err?.message ?? err).split("\n")[0] });
}
