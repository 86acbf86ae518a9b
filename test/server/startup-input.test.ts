// Bad start-up settings: `npm start` exits with one line naming the setting and the fix, before it
// opens (and so creates) the database file.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { START_ARGS } from "../support/child-server.ts";

const ROOT = join(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "refinery-startup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `npm start`'s command (node and its flags from package.json) with `args` and `env`. */
function npmStart(args: string[], env: Record<string, string>) {
  const db = join(dir, `${Object.keys(env).join("-") || "flag"}.db`);
  const out = spawnSync(process.execPath, [...START_ARGS, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, REFINERY_DB: db, ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { ...out, db };
}

describe("npm start with a bad port", () => {
  it("refuses PORT that is not a port, naming it, and creates no database", () => {
    const out = npmStart([], { PORT: "abc" });
    expect(out.status).toBe(1);
    expect(out.stderr.trim()).toBe(
      'refinery server: PORT: a port must be an integer from 0 to 65535, not "abc" ' +
        "Fix: set PORT to a port such as 8123, or 0 for any free port",
    );
    expect(out.stdout).toBe("");
    expect(existsSync(out.db)).toBe(false);
  });

  it("refuses --port out of range with exit 2 and one line", () => {
    const out = npmStart(["--port", "70000"], {});
    expect(out.status).toBe(2);
    expect(out.stderr.trim()).toBe(
      'refinery server: --port: a port must be an integer from 0 to 65535, not "70000" ' +
        "Fix: set --port to a port such as 8123, or 0 for any free port",
    );
    expect(existsSync(out.db)).toBe(false);
  });
});

describe("npm start with a bad --role", () => {
  it("refuses a role it does not know with exit 2 and one line naming the roles", () => {
    const out = npmStart(["--role", "workers"], {});
    expect(out.status).toBe(2);
    expect(out.stderr.trim()).toBe(
      'refinery server: --role: --role must be api, worker or both, got "workers" ' +
        "Fix: use --role api (HTTP only), --role worker (runs only) or leave it out (both)",
    );
    expect(existsSync(out.db)).toBe(false);
  });
});

// Every other setting goes through the same schema (core/env.ts); test/core/env.test.ts checks
// each one's message. These two go through npm start end to end.
describe("npm start with other bad settings", () => {
  it.each([
    [
      "REFINERY_APPROVAL_POLL_MS",
      "abc",
      "how often approval deadlines are checked, in ms must be an integer",
    ],
    ["REFINERY_SHUTDOWN_GRACE_MS", "soon", "the shutdown grace in ms must be an integer"],
  ])("refuses %s=%s with one line naming it, and creates no database", (field, value, says) => {
    const out = npmStart([], { PORT: "0", [field]: value });
    expect(out.status).toBe(1);
    const lines = out.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^refinery server: ${field}: ${says}.* Fix: set ${field} to `),
    );
    expect(lines[0]).toContain(JSON.stringify(value));
    expect(existsSync(out.db)).toBe(false);
  });
});
