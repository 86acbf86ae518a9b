import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Two files at a time: on a 2-core machine vitest's default runs one file at a time, and most
    // of a server test's time is waiting (child processes, model latency, polling).
    maxWorkers: 2,
  },
});
