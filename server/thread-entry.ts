// The script a run thread or an eval thread (worker_threads) starts with. Run from the build
// (dist/, plain JavaScript), it is the compiled entry itself. Run from the sources, it is
// run-thread.mjs, which loads the TypeScript entry through tsx's API: a worker does not inherit the
// tsx loader of the thread that started it. This file's own extension tells which.
export function threadScript(name: "run-thread" | "eval-thread"): { script: URL; entry: string } {
  const built = !import.meta.url.endsWith(".ts");
  const entry = new URL(`./${name}.${built ? "js" : "ts"}`, import.meta.url);
  return {
    script: built ? entry : new URL("./run-thread.mjs", import.meta.url),
    entry: entry.href,
  };
}
