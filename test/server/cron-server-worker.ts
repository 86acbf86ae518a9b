// One whole Refinery server in a worker thread, for the two-servers-on-one-database cron race
// (test/server/crons.test.ts): it loads, waits for "open", then starts; its cron clock reads the time the test thread sets in shared
// memory, and each "tick" message makes one scheduler pass and answers how many runs it made.
import { once } from "node:events";
import { parentPort, workerData } from "node:worker_threads";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";

const { env, config, clock } = workerData as {
  /** The database's environment (test-backend.ts databaseEnv). */
  env: Record<string, string>;
  config: string;
  clock: SharedArrayBuffer;
};
const now = new BigInt64Array(clock);

// Loaded (the costly part, in parallel with the other server); opened when the test says so.
parentPort!.postMessage({ loaded: true });
await once(parentPort!, "message");
const running = await startServer({
  env: { ...env, REFINERY_RUN_THREADS: "0" },
  configPath: config,
  port: 0,
  host: "127.0.0.1",
  log: silentLogger,
  pollMs: 100,
  cronClock: () => Number(Atomics.load(now, 0)),
  // Passes come only when the test asks, so both servers race on the same firings.
  cronPollMs: 3_600_000,
});
parentPort!.postMessage({ url: running.url });
parentPort!.on("message", (message: string) => {
  if (message === "tick") {
    running.crons.tick().then(
      (made) => parentPort!.postMessage({ made }),
      (err: unknown) => parentPort!.postMessage({ error: (err as Error).message }),
    );
  } else if (message === "close") {
    void running.close(2_000).then(() => parentPort!.postMessage({ closed: true }));
  }
});
