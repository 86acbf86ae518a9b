// The `refinery` CLI as a user runs it: a child process of the installed bin, a real SQLite
// file, the offline model by default and the OpenAI-compatible stub server for the HTTP path.
import { randomUUID } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { roleOf, startOpenAIStub } from "../support/openai-stub.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { systemAssistantId } from "../../graphs/registry.ts";

const BIN = join(import.meta.dirname, "../../cli/bin.mjs");
const dir = mkdtempSync(join(tmpdir(), "refinery-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): { child: ChildProcess; done: Promise<Result> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      REFINERY_DB: join(dir, "default.db"),
      ...env,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += String(d)));
  child.stderr?.on("data", (d) => (stderr += String(d)));
  if (stdin !== undefined) child.stdin?.end(stdin);
  else child.stdin?.end();
  const done = new Promise<Result>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

const run = (args: string[], env?: Record<string, string>, stdin?: string) =>
  cli(args, env, stdin).done;

function threadsIn(db: string): string[] {
  if (!existsSync(db)) return [];
  const conn = new Database(db, { readonly: true });
  try {
    const has = conn.prepare("select name from sqlite_master where name = 'checkpoints'").get();
    if (!has) return [];
    return (
      conn.prepare("select distinct thread_id from checkpoints").all() as { thread_id: string }[]
    ).map((r) => r.thread_id);
  } finally {
    conn.close();
  }
}

function rowsIn(db: string, sql: string): unknown[] {
  const conn = new Database(db, { readonly: true });
  try {
    return conn.prepare(sql).all();
  } finally {
    conn.close();
  }
}

const CRASH = "0c6a3b7e-2f4d-4e8a-9b1c-5d6e7f8a9b0c";

/** A config file that asks a reviewer for the final answer. */
function config(): string {
  const path = join(dir, "approval.yaml");
  if (!existsSync(path))
    writeFileSync(
      path,
      "approval: {mode: final}\nverifiers:\n  - {kind: answer_match, expected: 395}\n",
    );
  return path;
}

describe("refinery CLI", () => {
  it("--help works for every command", async () => {
    for (const args of [
      ["--help"],
      ["run", "--help"],
      ["resume", "--help"],
      ["approve", "--help"],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/refinery/);
    }
    const version = await run(["--version"]);
    expect(version).toMatchObject({ code: 0, stderr: "" });
    expect(version.stdout).toMatch(/^refinery \d+\.\d+\.\d+\n$/);
  });

  it("run prints each iteration live, then the answer, stop reason and tokens (offline model)", async () => {
    const db = join(dir, "live.db");
    const r = await run(["run", "What is 17 * 23 + 4?", "--expect-number", "395", "--db", db]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/offline simulated model/);
    expect(r.stdout).toMatch(/\[1\/3\] generate: /);
    expect(r.stdout).toMatch(/critique: /);
    expect(r.stdout).toMatch(/(pass|FAIL) answer_match/);
    expect(r.stdout).toMatch(/stop reason: accepted/);
    expect(r.stdout).toMatch(/tokens: [\d,]+ total/);
    expect(r.stdout).toMatch(/Answer: 395/);
    expect(threadsIn(db)).toHaveLength(1);
  });

  it("--json prints one machine-readable result; the task can come from stdin", async () => {
    const r = await run(
      ["run", "--json", "--expect-number", "395", "--db", join(dir, "json.db")],
      {},
      "What is 17 * 23 + 4?\n",
    );
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ stop_reason: "accepted", simulated: true });
    expect(result.answer).toMatch(/Answer: 395/);
    expect(result.usage.totalTokens).toBeGreaterThan(0);
    expect(result.usage.calls).toBeGreaterThanOrEqual(2);
    expect(result.verdicts[0]).toMatchObject({ verifier_id: "answer_match", pass: true });
    expect(typeof result.thread_id).toBe("string");
  });

  it("reads the task and options from files", async () => {
    const task = join(dir, "task.txt");
    const config = join(dir, "refine.yaml");
    writeFileSync(task, "Compute (12 + 8) * 3.");
    writeFileSync(
      config,
      "maxIterations: 4\nverifiers:\n  - kind: answer_match\n    expected: 60\n",
    );
    const r = await run([
      "run",
      "--file",
      task,
      "--config",
      config,
      "--json",
      "--db",
      join(dir, "files.db"),
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).answer).toMatch(/Answer: 60/);
  });

  describe("bad input: one line, non-zero exit, nothing stored", () => {
    const db = join(dir, "bad.db");
    it.each([
      [["run", "   "], /task is empty/],
      [["run", "x", "--must-match", "(unclosed"], /mustMatch\[0\].*invalid|regex/i],
      [["run", "x", "--verifier", '{"kind":"telepathy"}'], /kind/],
      [["run", "x", "--max-iterations", "many"], /--max-iterations/],
      [["run", "x", "--max-iterations", "0"], /--max-iterations/],
      [
        ["run", "x", "--max-iteration", "3"],
        /unknown option --max-iteration\b.*did you mean --max-iterations\?/,
      ],
      [["run", "x", "--thread", "crash-1"], /--thread: .*not a UUID.*Fix: omit --thread/],
      [["reject", "3f2b8c1e-1111-4222-8333-444455556666"], /--feedback: reject needs feedback/],
      [
        ["run", "x", "--verifier", '{"kind":"json_schema","schema":{"type":"nonsense"}}'],
        /schema/i,
      ],
      [["frobnicate"], /unknown command/],
    ])("%j", async (args, message) => {
      const r = await run(args, { REFINERY_DB: db });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/ {4}at /);
      expect(threadsIn(db)).toEqual([]);
    });

    it("an unreachable model endpoint fails fast with the base URL named and no thread left", async () => {
      const r = await run(["run", "What is 1 + 1?", "--db", db], {
        OPENAI_API_KEY: "k",
        OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/127\.0\.0\.1:9/);
      expect(r.stderr).toMatch(/OPENAI_BASE_URL/);
      expect(r.stderr).not.toMatch(/ {4}at /);
      expect(threadsIn(db)).toEqual([]);
      expect(rowsIn(db, "select thread_id from refinery_threads")).toEqual([]);
    });

    it("a corrupt database file is reported, not overwritten", async () => {
      const bad = join(dir, "corrupt.db");
      writeFileSync(bad, "this is not a sqlite database, just text ".repeat(200));
      const r = await run(["run", "What is 1 + 1?", "--db", bad]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/cannot open .*corrupt\.db as a SQLite database/);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    });

    it("resume of an unknown thread is invalid input (exit 2); a mistyped --db is refused, not created", async () => {
      writeFileSync(db, "");
      const r = await run(["resume", "no-such-thread", "--db", db]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/no run with thread id no-such-thread.*Fix: check the id/);
      const typo = join(dir, "refnery.db");
      const t = await run(["resume", "no-such-thread", "--db", typo]);
      expect(t.code).toBe(2);
      expect(t.stderr).toMatch(/^refinery: --db: no database at .*refnery\.db Fix: check the path/);
      expect(t.stderr.trim().split("\n")).toHaveLength(1);
      expect(existsSync(typo)).toBe(false);
    });
  });

  describe("approval: a CLI run is an ordinary thread of the server's database", () => {
    let server: TestServer;
    afterAll(async () => server?.close());

    it("waits for a reviewer (exit 4) where the server sees it; approve from the CLI, a reject from the server, abort from the CLI; --assistant runs on a server-made assistant", async () => {
      // The server's graphs run in its own thread here, on the offline model, as the CLI's do.
      server = await startTestServer({ env: { REFINERY_RUN_THREADS: "0" } });
      const db = server.dbPath;
      const task = "What is 17 * 23 + 4?";
      const waiting = await run(["run", task, "--config", config(), "--db", db, "--json"]);
      expect(waiting.stderr).toBe("");
      expect(waiting.code).toBe(4);
      const paused = JSON.parse(waiting.stdout);
      expect(paused).toMatchObject({
        status: "waiting_for_approval",
        approval: { type: "approval" },
      });
      const id: string = paused.thread_id;
      expect(paused.approval.draft).toMatch(/Answer: /);

      // The server over the same file sees the thread, its run and the pending approval.
      const thread = await server.client.threads.get(id);
      expect(thread).toMatchObject({ status: "interrupted", metadata: { graph_id: "refine" } });
      const runs = await server.client.runs.list(id);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({
        status: "success",
        assistant_id: systemAssistantId("refine"),
      });
      const queue = (await (await fetch(`${server.url}/approvals`)).json()) as {
        thread_id: string;
        task: string;
      }[];
      expect(queue).toContainEqual(expect.objectContaining({ thread_id: id, task }));

      const approved = await run(["approve", id, "--db", db, "--json"]);
      expect(approved.stderr).toBe("");
      expect(approved.code).toBe(0);
      expect(JSON.parse(approved.stdout)).toMatchObject({
        status: "finished",
        stop_reason: "approved",
      });
      expect(await server.client.threads.get(id)).toMatchObject({ status: "idle" });
      expect(await server.client.runs.list(id)).toHaveLength(2);
      // Nothing waits any more: a second answer is refused in one line, exit 2.
      const again = await run(["approve", id, "--db", db]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(
        /^refinery: THREAD_ID: thread .* is not waiting for a reviewer .*Fix: /,
      );

      // A second CLI thread, on an assistant made on the server (its options ask for approval),
      // answered by the server: reject with feedback runs the loop again there, until it waits
      // once more; the CLI then aborts it.
      const assistant = await server.client.assistants.create({
        graphId: "refine",
        config: { configurable: { approval: { mode: "final" }, maxIterations: 2 } },
      });
      const second = JSON.parse(
        (
          await run([
            "run",
            task,
            "--assistant",
            assistant.assistant_id,
            "--db",
            db,
            "--json",
            "--quiet",
          ])
        ).stdout,
      ).thread_id as string;
      expect(await server.client.runs.list(second)).toEqual([
        expect.objectContaining({ assistant_id: assistant.assistant_id }),
      ]);
      const rejected = await fetch(`${server.url}/threads/${second}/approval`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ action: "reject", feedback: "show each step" }),
      });
      expect(rejected.status).toBe(200);
      const { run_id } = (await rejected.json()) as { run_id: string };
      await server.client.runs.join(second, run_id);
      expect(await server.client.threads.get(second)).toMatchObject({ status: "interrupted" });
      const aborted = await run(["abort", second, "--db", db]);
      expect(aborted.code).toBe(3);
      expect(aborted.stdout).toMatch(/stop reason: aborted/);
      const state = (await server.client.threads.get(second)).values as {
        approvals: { action: string }[];
      };
      expect(state.approvals.map((a) => a.action)).toEqual(["reject", "abort"]);
    }, 60_000);
  });

  // A terminal for the CLI: util-linux `script` runs it on a pseudo-terminal fed from our pipe.
  it.skipIf(!existsSync("/usr/bin/script"))(
    "on a terminal, a run waiting for a reviewer asks what to do and continues with the answer",
    async () => {
      const q = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
      const command = [
        process.execPath,
        BIN,
        "run",
        "What is 17 * 23 + 4?",
        "--config",
        config(),
        "--db",
        join(dir, "tty.db"),
      ]
        .map(q)
        .join(" ");
      const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", TERM: "dumb" },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let answered = false;
      child.stdout.on("data", (d) => {
        stdout += String(d);
        if (!answered && stdout.includes("[w]ait? ")) {
          answered = true;
          child.stdin.write("a\n");
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(stdout).toMatch(/waiting for a reviewer/);
      expect(stdout).toMatch(/stop reason: approved/);
      expect(code).toBe(0);
    },
    60_000,
  );

  it("crash-resume: a killed run continues from its checkpoint without redoing finished steps", async () => {
    const stub = await startOpenAIStub();
    const served: string[] = [];
    stub.setHandler(async (body) => {
      const role = roleOf(body);
      served.push(role);
      if (role === "generate") return { content: "17 * 23 = 381, plus 4 is 385.\nAnswer: 385" };
      if (role === "critique") {
        const wrong = String(body.messages?.[1]?.content ?? "").includes("Answer: 385");
        return wrong
          ? { content: '{"verdict":"revise","score":0.2,"issues":["17 * 23 is 391, not 381"]}' }
          : { content: '{"verdict":"pass","score":0.95,"issues":[]}' };
      }
      // The revise call is slow, so the test can kill the process while it is in flight.
      return { content: "17 * 23 = 391, plus 4 is 395.\nAnswer: 395", delayMs: 1500 };
    });
    const db = join(dir, "crash.db");
    const env = { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: stub.url, REFINERY_DB: db };
    try {
      const first = cli(
        ["run", "What is 17 * 23 + 4?", "--expect-number", "395", "--thread", CRASH],
        env,
      );
      await waitFor(() => served.includes("revise"), 20_000);
      first.child.kill("SIGKILL");
      const killed = await first.done;
      expect(killed.code).toBeNull();
      expect(served).toEqual(["generate", "critique", "revise"]);

      const resumed = await run(["resume", CRASH, "--json"], env);
      expect(resumed.stderr).toBe("");
      expect(resumed.code).toBe(0);
      const result = JSON.parse(resumed.stdout);
      expect(result).toMatchObject({ stop_reason: "accepted", iterations: 2, simulated: false });
      expect(result.answer).toMatch(/Answer: 395/);
      // generate and the first critique were checkpointed: only the interrupted revise is redone.
      expect(served).toEqual(["generate", "critique", "revise", "revise", "critique"]);
      expect(threadsIn(db)).toEqual([CRASH]);
      // The killed process's run was taken over by resume: one run, finished, as the server sees it.
      expect(rowsIn(db, "select status, attempt from refinery_runs")).toEqual([
        { status: "success", attempt: 1 },
      ]);
      expect(rowsIn(db, "select status from refinery_threads")).toEqual([{ status: "idle" }]);
    } finally {
      await stub.close();
    }
  }, 60_000);
});

describe("a model that fails mid-run", () => {
  it("stops the run at REFINERY_MODEL_DEADLINE_MS with model_error, and resume continues at the failed step", async () => {
    const stub = await startOpenAIStub();
    const served: string[] = [];
    let down = true;
    stub.setHandler(async (body) => {
      const role = roleOf(body);
      served.push(role);
      if (role === "generate") return { content: "17 * 23 = 381, plus 4 is 385.\nAnswer: 385" };
      // The critic hangs until the endpoint "recovers".
      if (role === "critique" && down) return { delayMs: 60_000 };
      // Recovered, the endpoint reports no usage: the CLI counts the tokens and says so.
      if (role === "critique") {
        const wrong = String(body.messages?.[1]?.content ?? "").includes("Answer: 385");
        return wrong
          ? {
              content: '{"verdict":"revise","score":0.2,"issues":["17 * 23 is 391, not 381"]}',
              usage: null,
            }
          : { content: '{"verdict":"pass","score":0.95,"issues":[]}', usage: null };
      }
      return { content: "17 * 23 = 391, plus 4 is 395.\nAnswer: 395", usage: null };
    });
    const env = {
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: stub.url,
      REFINERY_DB: join(dir, "model-failure.db"),
      // Short enough for a test, long enough for the answers that do come on a loaded machine.
      REFINERY_MODEL_TIMEOUT_MS: "300",
      REFINERY_MODEL_DEADLINE_MS: "1000",
    };
    const thread = randomUUID();
    try {
      const first = await run(
        ["run", "What is 17 * 23 + 4?", "--expect-number", "395", "--thread", thread, "--json"],
        env,
      );
      expect(first.code).toBe(3);
      expect(JSON.parse(first.stdout)).toMatchObject({ stop_reason: "model_error" });
      expect(first.stderr).toMatch(
        /stopped early: .*got no answer within retry\.deadlineMs \(1000 ms\).*models\.critique\.timeoutMs/,
      );
      expect(served[0]).toBe("generate");
      expect(new Set(served.slice(1))).toEqual(new Set(["critique"]));

      down = false;
      const before = served.length;
      const resumed = await run(["resume", thread], env);
      expect(resumed.stderr).toBe("");
      expect(resumed.code).toBe(0);
      expect(resumed.stdout).toMatch(/stop reason: accepted/);
      expect(resumed.stdout).toMatch(
        /note: the endpoint reported no usage for some calls; [\d,]+ of the tokens were counted with the cl100k_base tokenizer/,
      );
      expect(served.slice(before)).toEqual(["critique", "revise", "critique"]);
    } finally {
      await stub.close();
    }
  }, 60_000);
});

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
