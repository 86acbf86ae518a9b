// Every environment setting goes through one schema (core/env.ts): a bad value is one line naming
// the variable and the fix, unset means the documented default, and a REFINERY_* name that is not
// a setting is reported with the closest one (a misspelt setting is otherwise silently ignored).
import { describe, expect, it } from "vitest";
import { ENV_DEFAULTS, ENV_NAMES, readEnv, unknownEnvWarnings } from "../../core/env.ts";
import { RefineryError } from "../../core/errors.ts";
import type { LogLevel } from "../../server/log.ts";
import { startTestServer } from "../support/server.ts";

function refusal(env: Record<string, string>): RefineryError {
  try {
    readEnv(env);
  } catch (err) {
    if (err instanceof RefineryError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe("readEnv", () => {
  it("unset or empty settings take their defaults", () => {
    const e = readEnv({});
    expect(e.PORT).toBe(8123);
    expect(e.REFINERY_WORKERS).toBe(ENV_DEFAULTS.REFINERY_WORKERS);
    expect(e.REFINERY_APPROVAL_POLL_MS).toBe(1000);
    expect(e.REFINERY_RUN_THREADS).toBe("auto");
    expect(e.REFINERY_RUN_THREAD_HEAP_MB).toBe(512);
    expect(e.REFINERY_MEMORY).toBe(true);
    expect(e.REFINERY_PACK_CHECKPOINTS).toBe(true);
    expect(e.REFINERY_ALLOW_ANONYMOUS).toBe(false);
    expect(e.REFINERY_RATE_LIMIT).toBeUndefined();
    expect(e.REFINERY_DB).toBeUndefined();
    expect(readEnv({ REFINERY_WORKERS: "", REFINERY_DB: " " }).REFINERY_WORKERS).toBe(64);
  });

  it("parses set values", () => {
    const e = readEnv({
      REFINERY_APPROVAL_POLL_MS: "250",
      REFINERY_RUN_THREADS: "0",
      REFINERY_RUN_THREAD_HEAP_MB: "0",
      REFINERY_MEMORY: "OFF",
      REFINERY_PACK_CHECKPOINTS: "off",
      REFINERY_ALLOW_ANONYMOUS: "1",
      REFINERY_RATE_LIMIT: "0",
      LOG_LEVEL: "warn",
    });
    expect(e).toMatchObject({
      REFINERY_APPROVAL_POLL_MS: 250,
      REFINERY_RUN_THREADS: 0,
      REFINERY_RUN_THREAD_HEAP_MB: 0,
      REFINERY_MEMORY: false,
      REFINERY_PACK_CHECKPOINTS: false,
      REFINERY_ALLOW_ANONYMOUS: true,
      REFINERY_RATE_LIMIT: 0,
      LOG_LEVEL: "warn",
    });
  });

  it("REFINERY_PACK_CHECKPOINTS takes on or off, and anything else is refused naming the fix", () => {
    expect(readEnv({ REFINERY_PACK_CHECKPOINTS: "0" }).REFINERY_PACK_CHECKPOINTS).toBe(false);
    expect(readEnv({ REFINERY_PACK_CHECKPOINTS: "ON" }).REFINERY_PACK_CHECKPOINTS).toBe(true);
    expect(refusal({ REFINERY_PACK_CHECKPOINTS: "maybe" }).toLine()).toBe(
      'REFINERY_PACK_CHECKPOINTS: the value must be one of on, off, true, false, 1, 0, not "maybe" Fix: set REFINERY_PACK_CHECKPOINTS to on or off (off while processes of a version before packing still run)',
    );
  });

  it("REFINERY_RUN_LEASE_MS, REFINERY_REDIS_URL and REFINERY_REDIS_PREFIX are checked, naming the fix", () => {
    expect(readEnv({}).REFINERY_RUN_LEASE_MS).toBe(30_000);
    expect(readEnv({}).REFINERY_REDIS_PREFIX).toBe("refinery");
    expect(refusal({ REFINERY_RUN_LEASE_MS: "100" }).toLine()).toBe(
      'REFINERY_RUN_LEASE_MS: how long a run stays leased to its worker without a heartbeat before another worker takes it over, in ms must be an integer from 300 to 600000, not "100" Fix: set REFINERY_RUN_LEASE_MS to a number of milliseconds such as 30000',
    );
    expect(readEnv({ REFINERY_REDIS_URL: "redis://127.0.0.1:6379" }).REFINERY_REDIS_URL).toBe(
      "redis://127.0.0.1:6379",
    );
    expect(refusal({ REFINERY_REDIS_URL: "127.0.0.1:6379" }).toLine()).toBe(
      "REFINERY_REDIS_URL: the value must be a Redis URL (redis://host:port or rediss://host:port) Fix: set REFINERY_REDIS_URL to a URL such as redis://127.0.0.1:6379, or leave it unset (workers then poll the database)",
    );
    expect(refusal({ REFINERY_REDIS_PREFIX: "a b" }).field).toBe("REFINERY_REDIS_PREFIX");
  });

  it("REFINERY_RUN_THREAD_HEAP_MB outside 0 or 64-65536 is refused, naming the variable and the fix", () => {
    for (const raw of ["32", "1.5", "lots", "70000"]) {
      const e = refusal({ REFINERY_RUN_THREAD_HEAP_MB: raw });
      expect(e.field).toBe("REFINERY_RUN_THREAD_HEAP_MB");
      expect(e.toLine()).toContain(`must be 0 or 64-65536 MiB, not ${JSON.stringify(raw)}`);
      expect(e.toLine()).toContain("use a number of MiB such as 512");
    }
    expect(readEnv({ REFINERY_RUN_THREAD_HEAP_MB: "64" }).REFINERY_RUN_THREAD_HEAP_MB).toBe(64);
  });

  it("REFINERY_APPROVAL_POLL_MS=abc is refused, not a 1 ms poll", () => {
    const e = refusal({ REFINERY_APPROVAL_POLL_MS: "abc" });
    expect(e.field).toBe("REFINERY_APPROVAL_POLL_MS");
    expect(e.toLine()).toBe(
      'REFINERY_APPROVAL_POLL_MS: how often approval deadlines are checked, in ms must be an integer from 10 to 3600000, not "abc" Fix: set REFINERY_APPROVAL_POLL_MS to a number of milliseconds such as 1000',
    );
    expect(refusal({ REFINERY_APPROVAL_POLL_MS: "1" }).field).toBe("REFINERY_APPROVAL_POLL_MS");
  });

  it.each([
    ["PORT", "abc"],
    ["REFINERY_WORKERS", "0"],
    ["REFINERY_WORKERS", "1.5"],
    ["REFINERY_STREAM_RETAIN_RUNS", "-1"],
    ["REFINERY_KEEPALIVE_MS", "0"],
    ["REFINERY_SHUTDOWN_GRACE_MS", "soon"],
    ["REFINERY_STEP_TIMEOUT_MS", "5m"],
    ["REFINERY_RUN_TIMEOUT_MS", "-5"],
    ["REFINERY_RATE_LIMIT", "lots"],
    ["REFINERY_TENANT_MAX_RUNS", "x"],
    ["REFINERY_TENANT_MAX_CRONS", "-1"],
    ["REFINERY_MAX_RECURSION_LIMIT", "0"],
    ["REFINERY_MAX_CHECKPOINT_BYTES", "8mb"],
    ["REFINERY_MAX_THREAD_BYTES", "-1"],
    ["REFINERY_EVAL_THREADS", "17"],
    ["REFINERY_EVAL_MAX_RUNS", "0"],
    ["REFINERY_EVAL_MAX_JOBS", "many"],
    ["REFINERY_RUN_THREADS", "lots"],
    ["REFINERY_RUN_THREAD_HEAP_MB", "32"],
    ["REFINERY_RUN_THREAD_HEAP_MB", "1gb"],
    ["REFINERY_BODY_LIMIT", "zz"],
    ["REFINERY_MEMORY", "maybe"],
    ["REFINERY_ALLOW_ANONYMOUS", "please"],
    ["REFINERY_STORE_URL", "mysql://x"],
    ["LOG_LEVEL", "verbose"],
  ])("%s=%s is one line naming it, the bad value and the fix", (name, value) => {
    const e = refusal({ [name]: value });
    expect(e.field).toBe(name);
    expect(e.code).toBe("invalid_config");
    const line = e.toLine();
    expect(line).not.toContain("\n");
    expect(line.startsWith(`${name}: `)).toBe(true);
    expect(line).toMatch(new RegExp(` Fix: (set|use) `));
    if (name !== "REFINERY_STORE_URL") expect(line).toContain(JSON.stringify(value));
  });

  it("every setting the schema knows is documented in the README", async () => {
    const { readFileSync } = await import("node:fs");
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const missing = ENV_NAMES.filter((n) => !readme.includes(n));
    expect(missing).toEqual([]);
  });
});

describe("unknown REFINERY_* settings", () => {
  it("are named with the closest known setting; other variables are left alone", () => {
    expect(
      unknownEnvWarnings({
        REFINERY_WORKER: "2",
        REFINERY_APROVAL_POLL_MS: "5",
        REFINERY_ZZZZZZZZZZZZ: "1",
        REFINERY_DB: "x.db",
        HOME: "/root",
      }),
    ).toEqual([
      "REFINERY_APROVAL_POLL_MS is not a Refinery setting and is ignored; did you mean REFINERY_APPROVAL_POLL_MS?",
      "REFINERY_WORKER is not a Refinery setting and is ignored; did you mean REFINERY_WORKERS?",
      "REFINERY_ZZZZZZZZZZZZ is not a Refinery setting and is ignored; the settings are listed in the README",
    ]);
  });

  it("the server logs a warning for each at start-up, and starts", async () => {
    const entries: { level: LogLevel; msg: string }[] = [];
    const s = await startTestServer({
      env: { REFINERY_WORKER: "2", REFINERY_RUN_THREADS: "0" },
      log: (level, msg) => entries.push({ level, msg }),
    });
    try {
      expect((await fetch(`${s.url}/ok`)).status).toBe(200);
      expect(entries).toContainEqual({
        level: "warn",
        msg: "REFINERY_WORKER is not a Refinery setting and is ignored; did you mean REFINERY_WORKERS?",
      });
    } finally {
      await s.close();
    }
  });
});

describe("the CLI reads the same settings", () => {
  async function cli(argv: string[], env: Record<string, string>) {
    const { main } = await import("../../cli/main.ts");
    let stdout = "";
    let stderr = "";
    const code = await main(argv, {
      stdout: { write: (s: string) => void (stdout += s) },
      stderr: { write: (s: string) => void (stderr += s) },
      env,
    });
    return { code, stdout, stderr };
  }

  it("refuses a bad value in one line before opening anything, and names a misspelt one", async () => {
    const bad = await cli(["run", "2+2?"], { REFINERY_APPROVAL_POLL_MS: "abc" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'refinery: REFINERY_APPROVAL_POLL_MS: how often approval deadlines are checked, in ms must be an integer from 10 to 3600000, not "abc" Fix: set REFINERY_APPROVAL_POLL_MS to a number of milliseconds such as 1000\n',
    );
    const typo = await cli(["keys", "hash", "--help"], { REFINERY_DBB: "x.db" });
    expect(typo.stderr).toBe(
      "refinery: warning: REFINERY_DBB is not a Refinery setting and is ignored; did you mean REFINERY_DB?\n",
    );
  });
});
