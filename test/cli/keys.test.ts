// `refinery keys` as a child process: a new key works against the server once its printed entry
// (which holds only the key's hash) is in the keys file; bad input is one line and exit 2.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { AUTH_CONFIG } from "../support/auth.ts";
import { startTestServer } from "../support/server.ts";

const BIN = join(import.meta.dirname, "../../cli/bin.mjs");
const exec = promisify(execFile);
const cli = async (args: string[]) => {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const dir = mkdtempSync(join(tmpdir(), "refinery-keys-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("refinery keys", () => {
  it("new prints a key once and an entry that holds only its hash; the server accepts the key", async () => {
    const made = await cli([
      "keys",
      "new",
      "--identity",
      "ci-bot",
      "--tenant",
      "acme",
      "--role",
      "member",
      "--json",
    ]);
    expect(made.code).toBe(0);
    const { key, entry } = JSON.parse(made.stdout) as {
      key: string;
      entry: Record<string, string>;
    };
    expect(key).toMatch(/^rk_[\w-]{32}$/);
    expect(JSON.stringify(entry)).not.toContain(key);
    expect((await cli(["keys", "hash", key])).stdout.trim()).toBe(entry.key_sha256);
    const file = join(dir, "keys.json");
    writeFileSync(file, JSON.stringify({ keys: [entry] }));
    expect(readFileSync(file, "utf8")).not.toContain(key);
    const s = await startTestServer({
      configPath: AUTH_CONFIG,
      env: { REFINERY_API_KEYS: file, REFINERY_RUN_THREADS: "0" },
    });
    try {
      const ok = await fetch(`${s.url}/threads`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": key },
        body: "{}",
      });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { metadata: Record<string, unknown> }).metadata.tenant_id).toBe(
        "acme",
      );
      const other = await fetch(`${s.url}/threads`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": `${key}x` },
        body: "{}",
      });
      expect(other.status).toBe(401);
    } finally {
      await s.close();
    }
  });

  it("refuses a missing field or an unknown role in one line, exit 2", async () => {
    const missing = await cli(["keys", "new", "--identity", "x", "--role", "member"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^refinery: --tenant: --tenant is required Fix: refinery keys new/),
    ]);
    const role = await cli(["keys", "new", "--identity", "x", "--tenant", "t", "--role", "owner"]);
    expect(role.code).toBe(2);
    expect(role.stderr).toMatch(/unknown role "owner".*viewer, reviewer, member, admin/);
  });
});
