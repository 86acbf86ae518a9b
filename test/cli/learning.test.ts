// `refinery lessons` and `refinery export` as a user runs them: child processes of the bin on a
// real SQLite file, the offline simulated model for the runs.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const BIN = join(import.meta.dirname, "../../cli/bin.mjs");
const dir = mkdtempSync(join(tmpdir(), "refinery-cli-learning-"));
const DB = join(dir, "learning.db");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", REFINERY_DB: DB, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += String(d)));
  child.stderr.on("data", (d) => (stderr += String(d)));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
}

describe("refinery lessons", () => {
  it("adds, lists, searches, pins and deletes lessons in the database file", async () => {
    const added = await run([
      "lessons",
      "add",
      "Convert minutes to hours before computing a speed.",
      "--keywords",
      "speed,minutes,train",
      "--json",
    ]);
    expect(added.code, added.stderr).toBe(0);
    const lesson = JSON.parse(added.stdout) as { id: string; text: string; pinned: boolean };
    expect(lesson).toMatchObject({
      text: "Convert minutes to hours before computing a speed.",
      pinned: false,
    });

    const listed = await run(["lessons", "list"]);
    expect(listed.stdout).toContain(lesson.id);
    const search = await run([
      "lessons",
      "search",
      "A train travels 90 km in 45 minutes. What is its speed?",
      "--json",
    ]);
    expect((JSON.parse(search.stdout) as { id: string }[]).map((h) => h.id)).toEqual([lesson.id]);

    const pinned = await run(["lessons", "pin", lesson.id, "--json"]);
    expect(JSON.parse(pinned.stdout)).toMatchObject({ id: lesson.id, pinned: true });
    const edited = await run([
      "lessons",
      "edit",
      lesson.id,
      "--text",
      "Convert minutes to hours first.",
    ]);
    expect(edited.code).toBe(0);
    expect(edited.stdout).toContain("Convert minutes to hours first.");

    expect((await run(["lessons", "delete", lesson.id])).code).toBe(0);
    const again = await run(["lessons", "delete", lesson.id]);
    expect(again.code).toBe(2);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toMatch(/^refinery: ID: no lesson .* Fix: list the ids/);
  }, 180_000);

  it("refuses bad input with one line and exit 2, changing nothing", async () => {
    const before = (await run(["lessons", "list", "--json"])).stdout;
    for (const args of [
      ["lessons", "add", ""],
      ["lessons", "add", "x".repeat(501)],
      ["lessons", "frobnicate"],
      ["lessons", "list", "--limit", "0"],
      ["lessons", "edit", "some-id"],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.stderr).toMatch(/^refinery: /);
    }
    expect((await run(["lessons", "list", "--json"])).stdout).toBe(before);
  }, 180_000);
});

describe("refinery export", () => {
  it("writes the runs the CLI refined as SFT, DPO and PASR JSONL, and stops quietly when its reader goes away", async () => {
    // Seed 3 of the simulated model: the first draft of this task is wrong and gets revised.
    const tasks = ["What is 17 * 23 + 4?", "What is 48 / 6 + 9?", "What is 125 - 38 * 2?"];
    for (const task of tasks) {
      const r = await run([
        "run",
        task,
        "--seed",
        "3",
        "--json",
        "--verifier",
        '{"kind":"arithmetic_steps"}',
      ]);
      expect([0, 3]).toContain(r.code);
    }
    const out = join(dir, "sft.jsonl");
    const sft = await run(["export", "--format", "sft", "--out", out, "--verdict", "any"]);
    expect(sft.code, sft.stderr).toBe(0);
    const lines = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(tasks).toContain(l.messages[0].content);
      expect(l.messages[1].role).toBe("assistant");
      expect(l.metadata.simulated).toBe(true);
    }
    const pasr = await run(["export", "--format", "pasr", "--verdict", "any"]);
    for (const l of pasr.stdout
      .trim()
      .split("\n")
      .map((x) => JSON.parse(x))) {
      expect(l.messages[2].content).toMatch(
        /^<think>\n[\s\S]*\n<\/think>\n<answer>\n[\s\S]*\n<\/answer>$/,
      );
    }
    const dpo = await run(["export", "--format", "dpo", "--verdict", "any"]);
    expect(dpo.code).toBe(0);
    for (const l of dpo.stdout
      .split("\n")
      .filter(Boolean)
      .map((x) => JSON.parse(x))) {
      expect(l.chosen[0].content).not.toBe(l.rejected[0].content);
      expect(l.reason).not.toBe("");
    }
    const none = await run(["export", "--format", "sft", "--until", "2001-01-01"]);
    expect(none).toMatchObject({ code: 0, stdout: "" });

    // `refinery export ... | head`: the reader goes away; the export stops quietly.
    const child = spawn(process.execPath, [BIN, "export", "--format", "sft", "--verdict", "any"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", REFINERY_DB: DB },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // The reader closes before the first line is written: every write meets a closed pipe.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  }, 180_000);

  it("refuses invalid filters with one line and exit 2", async () => {
    const typo = join(dir, "lerning.db");
    for (const [args, field, message] of [
      [["export"], "--format", /--format is required/],
      [
        ["export", "--format", "xml"],
        "--format",
        /unknown format "xml": the formats are sft, dpo, pasr/,
      ],
      [["export", "--format", "sfd"], "--format", /did you mean --format sft\?/],
      [["export", "--format", "sft", "--db", typo], "--db", /no database at .*lerning\.db Fix: /],
      [["export", "--format", "sft", "--since", "last week"], "--since"],
      [["export", "--format", "sft", "--verdict", "great"], "--verdict"],
      [["export", "--format", "sft", "--since", "2026-12-01", "--until", "2026-11-01"], "--since"],
      [["export", "--format", "sft", "--out", join(dir, "no-such-dir", "x.jsonl")], "--out"],
    ] as const) {
      const r = await run([...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(`${field}:`);
      if (message) expect(r.stderr).toMatch(message);
      expect(r.stderr, args.join(" ")).toMatch(/ Fix: /);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    // Read-only commands do not create the database they were pointed at by mistake.
    expect(existsSync(typo)).toBe(false);
  }, 180_000);
});
