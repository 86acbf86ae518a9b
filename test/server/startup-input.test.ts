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
