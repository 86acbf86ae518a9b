// The server tests against Postgres (REFINERY_TEST_BACKEND=postgres: each server database is a
// schema of its own at REFINERY_TEST_POSTGRES_URL, dropped after the file; see
// test/support/test-backend.ts). `npm test` runs NPM_TEST_FILES (about 1.5 min, so the whole
// `npm test` stays near 10 min on 2 cores); `npm run test:postgres` runs SERVER_FILES;
// `npm run test:postgres:all` (vitest --mode all) every server and storage test file.
import { defineConfig } from "vitest/config";

/** Runs, threads, time travel (checkpoint copies and rollbacks), multitask, approvals, store. */
export const NPM_TEST_FILES = [
  "test/server/runs.test.ts",
  "test/server/threads.test.ts",
  "test/server/time-travel.test.ts",
  "test/server/multitask.test.ts",
  "test/server/approval.test.ts",
  "test/server/store.test.ts",
];

/** Those, plus streams, assistants and crons: each passes against Postgres. */
export const SERVER_FILES = [
  ...NPM_TEST_FILES,
  "test/server/stream.test.ts",
  "test/server/assistants.test.ts",
  "test/server/crons.test.ts",
];

export default defineConfig(({ mode }) => ({
  test: {
    include:
      mode === "all"
        ? ["test/server/**/*.test.ts", "test/storage/**/*.test.ts"]
        : mode === "servers"
          ? SERVER_FILES
          : NPM_TEST_FILES,
    env: { REFINERY_TEST_BACKEND: "postgres" },
    setupFiles: ["test/support/backend-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
}));
