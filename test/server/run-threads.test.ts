// Run threads over the real server and the official SDK client: graphs execute in worker threads
// (each with its own connection to the SQLite file, or pool on the Postgres schema) with the same results and stream events as in
// the server thread; a thread that dies loses only its step in flight (the run resumes on a new
// thread) or, when it dies on every attempt, fails the run after 3; declarative graphs registered
// after start reach the threads; bad REFINERY_RUN_THREADS / REFINERY_PROVIDER_MODULE stop start-up
// with the variable named. The model is a provider module (test/fixtures/provider.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RefineryError } from "../../core/errors.ts";
import type { Logger } from "../../server/log.ts";
import { runThreadCount } from "../../server/run-threads.ts";
import { startServer, type RunningServer } from "../../server/start.ts";
import { databaseEnv } from "../support/test-backend.ts";
import { valuesOf } from "../support/wait.ts";

const CONFIG = join(import.meta.dirname, "../fixtures/threads.json");
const PROVIDER = `${join(import.meta.dirname, "../fixtures/provider.ts")}#fixedProvider`;

interface Entry {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

interface Started {
  running: RunningServer;
  client: Client;
  url: string;
  logs: Entry[];
}

let dir: string;
const previousCountFile = process.env.COUNT_FILE;
let countFile: string;

async function start(name: string, runThreads: number, env: Record<string, string> = {}) {
  const logs: Entry[] = [];
  const log: Logger = (level, msg, fields) => logs.push({ level, msg, fields: fields ?? {} });
  const running = await startServer({
    env: {
      ...databaseEnv(join(dir, `${name}.db`)),
      REFINERY_PROVIDER_MODULE: PROVIDER,
      ...env,
    },
    configPath: CONFIG,
    port: 0,
    host: "127.0.0.1",
    log,
    concurrency: 8,
    pollMs: 200,
    runThreads,
  });
  const client = new Client({
    apiUrl: running.url,
    callerOptions: { maxRetries: 0, maxConcurrency: 16 },
  });
  return { running, client, url: running.url, logs } satisfies Started;
}

let threaded: Started;
let inline: Started;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "refinery-threads-"));
  countFile = join(dir, "count.txt");
  writeFileSync(countFile, "");
  // Graph code in run threads reads the same process.env as the server thread (SHARE_ENV).
  process.env.COUNT_FILE = countFile;
  [threaded, inline] = await Promise.all([start("threaded", 2), start("inline", 0)]);
  // The server listens while its run threads start: these tests count on both being up.
  await threaded.running.runThreadsReady();
});
afterAll(async () => {
  await Promise.all([threaded?.running.close(2_000), inline?.running.close(2_000)]);
  if (previousCountFile === undefined) delete process.env.COUNT_FILE;
  else process.env.COUNT_FILE = previousCountFile;
  rmSync(dir, { recursive: true, force: true });
});

const REFINE = {
  input: { task: "What is 6 * 7?" },
  config: {
    configurable: { maxIterations: 2, verifiers: [{ kind: "answer_match", expected: 42 }] },
  },
};

interface RefineValues {
  drafts: { text: string }[];
  best?: { text: string };
  stopReason?: string;
  usage?: { promptTokens: number; completionTokens: number; calls: number };
}

/** What a refine run decided, without ids and times. */
function outcomeOf(v: RefineValues) {
  return {
    drafts: v.drafts.map((d) => d.text),
    best: v.best?.text,
    stopReason: v.stopReason,
    usage: v.usage,
  };
}

function stepsOf(topic: string): string[] {
  return readFileSync(countFile, "utf8")
    .split("\n")
    .filter((line) => line.endsWith(` ${topic}`))
    .map((line) => line.split(" ")[0]!);
}

describe("run threads", () => {
  it("starts the threads it was asked for (one while idle, the rest with the first run); none when 0", async () => {
    const listening = (s: Started) => s.logs.find((e) => e.msg === "server listening")?.fields;
    expect(listening(threaded)).toMatchObject({ run_threads: 2 });
    expect(listening(inline)).toMatchObject({ run_threads: 0 });
    const gauge = async (s: Started) =>
      /^refinery_run_threads (\d+)$/m.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1];
    expect(await gauge(threaded)).toBe("1");
    expect(await gauge(inline)).toBe("0");
    await threaded.client.runs.wait(null, "refine", REFINE);
    await threaded.running.runThreadsReady();
    expect(await gauge(threaded)).toBe("2");
  });

  it("runs graphs in the threads, with the same results as in the server thread", async () => {
    const earlier = threaded.logs.length;
    const runs = await Promise.all(
      Array.from({ length: 6 }, () =>
        valuesOf<RefineValues>(threaded.client.runs.wait(null, "refine", REFINE)),
      ),
    );
    const reference = await valuesOf<RefineValues>(inline.client.runs.wait(null, "refine", REFINE));
    expect(outcomeOf(reference).drafts[0]).toBe("fixed provider says: 42");
    expect(outcomeOf(reference).stopReason).toBeTruthy();
    for (const values of runs) expect(outcomeOf(values)).toEqual(outcomeOf(reference));

    // Each run was executed by a run thread, and with 6 at once both threads took some.
    const byThread = threaded.logs
      .slice(earlier)
      .filter((e) => e.msg === "run finished")
      .map((e) => e.fields.run_thread);
    expect(byThread).toHaveLength(6);
    expect(new Set(byThread)).toEqual(new Set([1, 2]));
    expect(inline.logs.filter((e) => e.msg === "run finished")[0]?.fields.run_thread).toBe(
      undefined,
    );
  });

  it("streams every mode from a thread as the server thread does, and replays after Last-Event-ID", async () => {
    const streamMode = [
      "values",
      "updates",
      "messages-tuple",
      "custom",
      "debug",
      "messages",
      "events",
    ] as const;
    const collect = async (s: Started) => {
      const thread = await s.client.threads.create();
      const events: { event: string; data: unknown; id?: string }[] = [];
      for await (const chunk of s.client.runs.stream(thread.thread_id, "refine", {
        ...REFINE,
        streamMode: [...streamMode],
      })) {
        events.push(chunk as { event: string; data: unknown; id?: string });
      }
      return { thread, events };
    };
    const [ours, theirs] = await Promise.all([collect(threaded), collect(inline)]);
    const names = (e: { event: string }[]) => e.map((x) => x.event);
    expect(names(ours.events)).toEqual(names(theirs.events));
    // (this model answers in one piece: no on_chat_model_stream, so no messages/partial)
    for (const mode of ["values", "updates", "messages", "debug", "events"])
      expect(names(ours.events)).toContain(mode);
    const lastValues = (e: { event: string; data: unknown }[]) =>
      outcomeOf(e.filter((x) => x.event === "values").at(-1)!.data as RefineValues);
    expect(lastValues(ours.events)).toEqual(lastValues(theirs.events));
    // messages-tuple chunks cross the thread boundary as protocol dicts.
    const message = ours.events.find((x) => x.event === "messages")!.data as [
      { type: string; content: unknown },
      Record<string, unknown>,
    ];
    expect(message[0].type).toMatch(/^(ai|AIMessageChunk)$/);
    expect(message[1]).toHaveProperty("langgraph_node");

    // join-stream with Last-Event-ID replays exactly the events after it.
    const [run] = await threaded.client.runs.list(ours.thread.thread_id, { limit: 1 });
    const ids: string[] = [];
    const all: string[] = [];
    for await (const c of threaded.client.runs.joinStream(ours.thread.thread_id, run!.run_id, {
      streamMode: [...streamMode],
    }))
      all.push((c as { id?: string }).id ?? "");
    for await (const c of threaded.client.runs.joinStream(ours.thread.thread_id, run!.run_id, {
      lastEventId: all[4],
      streamMode: [...streamMode],
    }))
      ids.push((c as { id?: string }).id ?? "");
    expect(all.length).toBeGreaterThan(6);
    expect(ids).toEqual(all.slice(5));
  });

  // The durable fixture graph reads, from a connection of its own, what the server committed.
  it("commits each step before the next one starts, in a thread and in the server thread", async () => {
    for (const [name, s] of [
      ["threaded", threaded],
      ["inline", inline],
    ] as const) {
      const env = databaseEnv(join(dir, `${name}.db`));
      const thread = await s.client.threads.create();
      const values = await valuesOf<{ log: string[] }>(
        s.client.runs.wait(thread.thread_id, "durable", {
          input: {
            dbPath: env.REFINERY_DB,
            pgUrl: env.REFINERY_DATABASE_URL ?? "",
            pgSchema: env.REFINERY_DATABASE_SCHEMA ?? "",
          },
        }),
      );
      // Each node sees the checkpoint of the step before it: none is only queued.
      expect(values.log, name).toEqual(["one saw 0", "two saw 1", "three saw 2"]);
    }
  });

  it("interrupts in a thread and resumes there with command.resume", async () => {
    const thread = await threaded.client.threads.create();
    await threaded.client.runs.wait(thread.thread_id, "approval", { input: { topic: "t-int" } });
    const waiting = await threaded.client.threads.get(thread.thread_id);
    expect(waiting.status).toBe("interrupted");
    const done = await valuesOf<{ log: string[] }>(
      threaded.client.runs.wait(thread.thread_id, "approval", { command: { resume: "yes" } }),
    );
    expect(done.log).toEqual(["draft:t-int", "review:yes", "publish:yes"]);
    expect((await threaded.client.threads.get(thread.thread_id)).status).toBe("idle");
  });
});

describe("start-up", () => {
  it("serves before its run threads are ready; runs sent meanwhile wait for them and run there", async () => {
    const fresh = await start("fresh", 2);
    try {
      // Sent as soon as the server listens, while the threads may still be opening the file.
      const [ok, ...runs] = await Promise.all([
        fetch(`${fresh.url}/ok`),
        ...Array.from({ length: 4 }, () =>
          valuesOf<RefineValues>(fresh.client.runs.wait(null, "refine", REFINE)),
        ),
      ]);
      expect(ok.status).toBe(200);
      for (const values of runs) expect(outcomeOf(values).stopReason).toBeTruthy();
      const byThread = fresh.logs
        .filter((e) => e.msg === "run finished")
        .map((e) => e.fields.run_thread);
      expect(byThread).toHaveLength(4);
      expect(new Set(byThread)).toEqual(new Set([1, 2]));
      await fresh.running.runThreadsReady();
      expect(fresh.logs.some((e) => e.msg === "run threads ready")).toBe(true);
    } finally {
      await fresh.running.close(2_000);
    }
  });
});

describe("a run thread that dies", () => {
  it("loses only the step in flight: the run is re-queued and finishes on a new thread", async () => {
    const thread = await threaded.client.threads.create();
    const values = await valuesOf<{ log: string[] }>(
      threaded.client.runs.wait(thread.thread_id, "thread_exit", { input: { topic: "once-1" } }),
    );
    expect(values.log).toEqual(["one", "exit", "two"]);
    // "one" was checkpointed before the thread died and is not executed again; "exit" ran
    // twice, but the first attempt ended the thread before it counted.
    expect(stepsOf("once-1")).toEqual(["one", "exit", "two"]);
    const [run] = await threaded.client.runs.list(thread.thread_id);
    expect(run!.status).toBe("success");
    expect(threaded.logs.some((e) => e.msg === "run lost before it finished; re-queued")).toBe(
      true,
    );

    // The server still has two threads that run graphs, and /metrics says one stopped.
    const metrics = await (await fetch(`${threaded.url}/metrics`)).text();
    expect(metrics).toMatch(/^refinery_run_threads 2$/m);
    expect(metrics).toMatch(/^refinery_run_thread_exits_total 1$/m);
    const after = await Promise.all(
      Array.from({ length: 4 }, () =>
        valuesOf<RefineValues>(threaded.client.runs.wait(null, "refine", REFINE)),
      ),
    );
    for (const v of after) expect(v.drafts[0]!.text).toBe("fixed provider says: 42");
  });

  it("fails a run that ends its thread on every attempt after 3, and keeps serving", async () => {
    const thread = await threaded.client.threads.create();
    // /wait answers with the run's error, which the SDK raises.
    await expect(
      threaded.client.runs.wait(thread.thread_id, "thread_exit", { input: { topic: "always-1" } }),
    ).rejects.toThrow(/RunThreadLost: the run could not finish: run thread exited with code 3/);
    const [run] = await threaded.client.runs.list(thread.thread_id);
    expect(run!.status).toBe("error");
    const state = await threaded.client.threads.get(thread.thread_id);
    expect(state.status).toBe("error");
    expect(JSON.stringify(state)).toContain("RunThreadLost");
    expect(stepsOf("always-1")).toEqual(["one"]);
    const values = await valuesOf<RefineValues>(threaded.client.runs.wait(null, "refine", REFINE));
    expect(values.drafts[0]!.text).toBe("fixed provider says: 42");
    // Three replacement threads start (each loads the graphs): slow on a loaded machine.
  }, 90_000);
});

describe("declarative graphs registered after start", () => {
  const spec = (mark: string) => ({
    id: "marked",
    description: `answers with ${mark}`,
    start: "write",
    nodes: { write: { kind: "generate", prompt: { system: `Answer. MARK:${mark}` } } },
    edges: [{ from: "write", to: "END" }],
  });
  const send = (method: string, path: string, body?: unknown) =>
    fetch(`${threaded.url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const draftOf = async () => {
    const v = await valuesOf<RefineValues>(
      threaded.client.runs.wait(null, "marked", { input: { task: "Say it." } }),
    );
    return v.drafts.at(-1)!.text;
  };

  it("runs each version in the threads as soon as it is registered, and not after delete", async () => {
    expect((await send("POST", "/graphs", spec("v1"))).status).toBe(201);
    // Both threads: several runs at once land on both.
    const first = await Promise.all([draftOf(), draftOf(), draftOf(), draftOf()]);
    expect(new Set(first)).toEqual(new Set(["fixed provider says: 42 [v1]"]));
    expect((await send("PUT", "/graphs/marked", { ...spec("v2"), id: undefined })).status).toBe(
      201,
    );
    const second = await Promise.all([draftOf(), draftOf(), draftOf(), draftOf()]);
    expect(new Set(second)).toEqual(new Set(["fixed provider says: 42 [v2]"]));
    expect((await send("DELETE", "/graphs/marked")).status).toBe(204);
    const res = await send("POST", "/runs/wait", {
      assistant_id: "marked",
      input: { task: "Say it." },
    });
    expect(res.status).toBe(404);
  });
});

describe("configuration", () => {
  it("reads REFINERY_RUN_THREADS as auto, 0 or a count, and names it when it is wrong", () => {
    expect(runThreadCount("0")).toBe(0);
    expect(runThreadCount(3)).toBe(3);
    expect(runThreadCount(undefined)).toBe(runThreadCount("auto"));
    expect(() => runThreadCount("many")).toThrow(/REFINERY_RUN_THREADS/);
    expect(() => runThreadCount("-1")).toThrow(/REFINERY_RUN_THREADS/);
  });

  it.each([
    ["a file that does not exist", "/nonexistent/provider.ts#fixedProvider", /does not exist/],
    ["no export name", PROVIDER.split("#")[0]!, /names no export/],
    [
      "an export that is not a provider",
      PROVIDER.replace("fixedProvider", "notAProvider"),
      /not a model provider/,
    ],
  ])("refuses to start with a provider module naming %s", async (_what, spec, message) => {
    const err = await start(`bad-${Math.random()}`, 1, {
      REFINERY_PROVIDER_MODULE: spec,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(message);
    expect(err?.message).toMatch(/REFINERY_PROVIDER_MODULE/);
  });

  it("refuses to start with REFINERY_RUN_THREADS that is not a count", async () => {
    const err = await startServer({
      env: { REFINERY_DB: join(dir, "bad-threads.db"), REFINERY_RUN_THREADS: "lots" },
      configPath: CONFIG,
      port: 0,
      log: () => {},
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/run threads must be "auto" or 0-64, not "lots"/);
    expect((err as RefineryError).field).toBe("REFINERY_RUN_THREADS");
  });
});
