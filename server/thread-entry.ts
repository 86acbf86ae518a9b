// The script a run thread or an eval thread (worker_threads) starts with. Run from the build
// (dist/, plain JavaScript), it is the thread's bundled entry, dist/server/<name>.js. Run from the
// sources, it is run-thread.mjs, which loads the TypeScript entry through tsx's API: a worker does
// not inherit the tsx loader of the thread that started it. core/paths.ts tells which.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DIST, FROM_SOURCES, ROOT } from "../core/paths.ts";

export function threadScript(name: "run-thread" | "eval-thread"): { script: URL; entry: string } {
  const entry = pathToFileURL(
    FROM_SOURCES ? join(ROOT, "server", `${name}.ts`) : join(DIST, "server", `${name}.js`),
  );
  return {
    script: FROM_SOURCES ? pathToFileURL(join(ROOT, "server", "run-thread.mjs")) : entry,
    entry: entry.href,
  };
}
