// A small work pool: at most `concurrency` tasks at once, in order. On the first failure or an
// abort no new task starts; tasks already running finish (or see the abort) before it returns.
import { setImmediate as nextTurn } from "node:timers/promises";

export async function runPool<T>(
  tasks: readonly T[],
  concurrency: number,
  worker: (task: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && !signal?.aborted && next < tasks.length) {
      const index = next++;
      try {
        await worker(tasks[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
      // Let the event loop turn between tasks. A run on the offline model with an in-memory
      // checkpointer does no I/O at all: without this, a whole evaluation is one chain of
      // promise callbacks, and neither Ctrl-C (SIGINT) nor anything else waiting on the loop
      // (timers, HTTP requests in the server) gets a turn until it ends.
      await nextTurn();
    }
  };
  const lanes = Math.max(1, Math.min(Math.floor(concurrency), tasks.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failure) throw failure.error;
  signal?.throwIfAborted();
}
