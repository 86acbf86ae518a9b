// Signals handed to code we do not own (the openai SDK, fetch) are our own, linked to their
// sources by listeners we remove when the call ends.
//
// Why not AbortSignal.any: Node keeps a composite signal that has an "abort" listener in a
// process-wide set (gcPersistentSignals) until it aborts or its last listener is removed, and
// the openai SDK adds a listener to the signal of every request and never removes it. LangGraph
// hands each node a composite signal; passed on as it is, every model call left a signal, the
// SDK's AbortController and their closures in that set for the life of the process: about 20 MiB
// of RSS per 1,000 runs (bench/RESULTS.md, "RSS under load").

export interface LinkedSignal {
  /** Aborts, with the source's reason, as soon as any source does; undefined without sources. */
  signal: AbortSignal | undefined;
  /** Removes the listeners from the sources; the signal is then unreachable from them. */
  dispose(): void;
}

export function linkSignals(...sources: (AbortSignal | undefined)[]): LinkedSignal {
  const from = [...new Set(sources.filter((s): s is AbortSignal => s !== undefined))];
  if (from.length === 0) return { signal: undefined, dispose: () => {} };
  const controller = new AbortController();
  const aborted = from.find((s) => s.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return { signal: controller.signal, dispose: () => {} };
  }
  const listeners = from.map((source) => {
    const onAbort = () => {
      dispose();
      controller.abort(source.reason);
    };
    source.addEventListener("abort", onAbort, { once: true });
    return [source, onAbort] as const;
  });
  function dispose(): void {
    for (const [source, onAbort] of listeners) source.removeEventListener("abort", onAbort);
  }
  return { signal: controller.signal, dispose };
}
