// Streaming over the real server: the SDK's runs.stream in every stream mode the refine graph
// uses, interrupts in the stream, raw SSE framing and keep-alives read with fetch, join-stream
// of a background run, reconnect with Last-Event-ID, errors, and cancel on disconnect.
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import express from "express";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSse } from "../../server/http.ts";
import { StreamHub, type RunEvent } from "../../server/stream-hub.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { eventually, valuesOf } from "../support/wait.ts";

const KEEP_ALIVE_MS = 50;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ keepAliveMs: KEEP_ALIVE_MS });
});
afterAll(async () => s?.close());

const REFINE_TASK = { task: "What is 17 * 23 + 4?" };
const REFINE_CONFIG = {
  configurable: {
    verifiers: [{ kind: "answer_match", expected: 395 }],
    models: { default: { provider: "simulated", simulated: { seed: 7 } } },
  },
};

interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  calls: number;
}
interface RefineValues {
  answer: string | null;
  stopReason: string | null;
  usage: Usage;
  drafts: { iteration: number; text: string }[];
  critiques: { iteration: number; verdict: string; raw: string }[];
  verdicts: { iteration: number; pass: boolean }[];
}
interface StepValues {
  topic: string;
  log: string[];
}
interface Event {
  id?: string;
  event: string;
  data: unknown;
}

async function collect(stream: AsyncIterable<Event>): Promise<Event[]> {
  const out: Event[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

const ofType = (events: Event[], name: string) => events.filter((e) => e.event === name);

/** "<attempt>-<n>" -> n, asserting the attempt. */
function seqOf(id: string | undefined, attempt = 1): number {
  const m = /^(\d+)-(\d+)$/.exec(id ?? "");
  expect(m, `event id ${id}`).not.toBeNull();
  expect(Number(m![1])).toBe(attempt);
  return Number(m![2]);
}

function expectConsecutiveIds(events: Event[]): void {
  const seqs = events.map((e) => seqOf(e.id));
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

const newThread = async (client: Client = s.client) => (await client.threads.create()).thread_id;

interface Frame {
  raw: string;
  comment?: string;
  event?: string;
  data?: unknown;
  id?: string;
}

/** Reads a raw SSE response into frames (comments included), until the server closes it. */
async function readFrames(res: Response, stopAfter?: (frames: Frame[]) => boolean) {
  const frames: Frame[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const frame: Frame = { raw };
      for (const line of raw.split("\n")) {
        if (line.startsWith(":")) frame.comment = line.slice(1).trim();
        else if (line.startsWith("event: ")) frame.event = line.slice(7);
        else if (line.startsWith("data: ")) frame.data = JSON.parse(line.slice(6));
        else if (line.startsWith("id: ")) frame.id = line.slice(4);
      }
      frames.push(frame);
    }
    if (stopAfter?.(frames)) {
      await reader.cancel();
      break;
    }
  }
  return { frames, rest: buffer };
}

function postJson(path: string, body: unknown, init: RequestInit = {}) {
  return fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
}

describe("runs.stream modes", () => {
  it("values (the default): metadata first, then the state after every step", async () => {
    const threadId = await newThread();
    let runId: string | undefined;
    const events = await collect(
      s.client.runs.stream(threadId, "slow", {
        input: { topic: "v", delayMs: 0 },
        onRunCreated: (m) => (runId = m.run_id),
      }),
    );
    expect(events[0]).toEqual({
      id: "1-1",
      event: "metadata",
      data: { run_id: runId, attempt: 1 },
    });
    expect(events.slice(1).every((e) => e.event === "values")).toBe(true);
    expect(events.slice(1).map((e) => (e.data as StepValues).log)).toEqual([
      [],
      ["one"],
      ["one", "two"],
      ["one", "two", "three"],
    ]);
    expectConsecutiveIds(events);
    // the stream ends when the run has ended: the run is already recorded as a success
    expect((await s.client.runs.get(threadId, runId!)).status).toBe("success");
    expect((await s.client.threads.getState(threadId)).values).toEqual(events.at(-1)?.data);
  });

  it("updates: one event per node with what the node returned", async () => {
    const events = await collect(
      s.client.runs.stream(await newThread(), "slow", {
        input: { topic: "u", delayMs: 0 },
        streamMode: "updates",
      }),
    );
    expect(events.map((e) => e.event)).toEqual(["metadata", "updates", "updates", "updates"]);
    expect(events.slice(1).map((e) => e.data)).toEqual([
      { one: { log: "one" } },
      { two: { log: "two" } },
      { three: { log: "three" } },
    ]);
  });

  it("updates on refine: each iteration shows the node, draft, critique, verdicts and usage", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "refine", {
        input: REFINE_TASK,
        config: REFINE_CONFIG,
        streamMode: "updates",
      }),
    );
    const updates = ofType(events, "updates").map((e) => e.data as Record<string, unknown>);
    const steps = updates.map((u) => {
      const keys = Object.keys(u);
      expect(keys).toHaveLength(1);
      return { node: keys[0]!, update: u[keys[0]!] as Record<string, unknown> };
    });
    const final = (await s.client.threads.getState<RefineValues>(threadId)).values;

    expect(steps[0]?.node).toBe("generate");
    expect(new Set(steps.map((st) => st.node))).toEqual(
      new Set(
        ["generate", "critique", "verify", "revise"].filter((n) =>
          steps.some((st) => st.node === n),
        ),
      ),
    );
    expect(steps.some((st) => st.node === "verify")).toBe(true);

    // every draft and every critique of the final state was streamed by the node that made it
    const drafts = steps.flatMap((st) => {
      const d = st.update.drafts as { text: string } | { text: string }[] | undefined;
      return d === undefined ? [] : Array.isArray(d) ? d : [d];
    });
    expect(drafts.map((d) => d.text)).toEqual(final.drafts.map((d) => d.text));
    const critiques = steps.flatMap((st) =>
      st.update.critiques === undefined ? [] : [st.update.critiques],
    );
    expect(critiques.flat()).toEqual(final.critiques);
    const verdicts = steps.flatMap((st) => (st.update.verdicts as unknown[] | undefined) ?? []);
    expect(verdicts).toEqual(final.verdicts);
    expect(steps.filter((st) => st.node === "verify").every((st) => st.update.verdicts)).toBe(true);

    // usage: each step reports its own; together they are the run's total
    const total = steps.reduce(
      (sum, st) => sum + ((st.update.usage as Usage | undefined)?.totalTokens ?? 0),
      0,
    );
    expect(total).toBe(final.usage.totalTokens);
    expect(total).toBeGreaterThan(0);
    const lastUpdate = steps.at(-1)?.update;
    expect(lastUpdate?.stopReason).toBe(final.stopReason);
  });

  it("custom: the refine nodes emit drafts, critiques and verdicts as they happen", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "refine", {
        input: REFINE_TASK,
        config: REFINE_CONFIG,
        streamMode: "custom",
      }),
    );
    expect(events[0]?.event).toBe("metadata");
    const custom = ofType(events, "custom").map((e) => e.data as Record<string, unknown>);
    expect(custom.length).toBe(events.length - 1);
    const final = (await s.client.threads.getState<RefineValues>(threadId)).values;

    const drafts = custom.filter((c) => c.type === "draft");
    expect(drafts.map((d) => d.text)).toEqual(final.drafts.map((d) => d.text));
    expect(drafts[0]).toMatchObject({ node: "generate", iteration: 1 });
    expect((drafts[0]?.usage as Usage).totalTokens).toBeGreaterThan(0);

    const critiques = custom.filter((c) => c.type === "critique");
    expect(critiques.map((c) => c.raw)).toEqual(final.critiques.map((c) => c.raw));
    expect(critiques.every((c) => c.verdict === "pass" || c.verdict === "revise")).toBe(true);

    const verdicts = custom.filter((c) => c.type === "verdicts");
    expect(verdicts.length).toBeGreaterThanOrEqual(1);
    expect(verdicts.flatMap((v) => v.verdicts as unknown[])).toEqual(final.verdicts);
    // the custom events come in the order the steps ran: a draft before its verdicts
    expect(custom.findIndex((c) => c.type === "draft")).toBeLessThan(
      custom.findIndex((c) => c.type === "verdicts"),
    );
  });

  it("messages-tuple: the simulated model's tokens arrive as [message, metadata] tuples", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "refine", {
        input: REFINE_TASK,
        config: REFINE_CONFIG,
        streamMode: "messages-tuple",
      }),
    );
    const tuples = ofType(events, "messages").map(
      (e) => e.data as [{ id: string; type: string; content: string }, Record<string, unknown>],
    );
    expect(tuples.length).toBeGreaterThan(3);
    for (const tuple of tuples) {
      expect(Array.isArray(tuple)).toBe(true);
      expect(tuple).toHaveLength(2);
      const [message, metadata] = tuple;
      expect(typeof message.content).toBe("string");
      expect(message.id).toBeTruthy();
      expect(["generate", "critique", "revise", "verify"]).toContain(metadata.langgraph_node);
      expect(metadata.thread_id).toBe(threadId);
    }
    // the tokens of one model call, concatenated, are the text the node recorded
    const byMessage = new Map<string, string>();
    for (const [m] of tuples) byMessage.set(m.id, (byMessage.get(m.id) ?? "") + m.content);
    expect(byMessage.size).toBeGreaterThan(1);
    const tokensPerCall = tuples.length / byMessage.size;
    expect(tokensPerCall).toBeGreaterThan(1);
    const final = (await s.client.threads.getState<RefineValues>(threadId)).values;
    const recorded = new Set([
      ...final.drafts.map((d) => d.text),
      ...final.critiques.map((c) => c.raw),
    ]);
    const texts = [...byMessage.values()];
    expect(texts.filter((t) => recorded.has(t)).length).toBeGreaterThanOrEqual(1);
  });

  it("messages: messages/metadata once per model message, then messages/partial with the text so far, mixed with values", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "refine", {
        input: REFINE_TASK,
        config: REFINE_CONFIG,
        streamMode: ["messages", "values"],
      }),
    );
    expect(events[0]!.event).toBe("metadata");
    const names = new Set(events.map((e) => e.event));
    expect([...names].sort()).toEqual([
      "messages/metadata",
      "messages/partial",
      "metadata",
      "values",
    ]);
    const seen = new Map<string, string>();
    for (const e of events) {
      if (e.event === "messages/metadata") {
        const entries = Object.entries(
          e.data as Record<string, { metadata: Record<string, unknown> }>,
        );
        expect(entries).toHaveLength(1);
        const [id, value] = entries[0]!;
        expect(seen.has(id!)).toBe(false);
        seen.set(id!, "");
        expect(["generate", "critique", "revise", "verify"]).toContain(
          value!.metadata.langgraph_node,
        );
        expect(value!.metadata.thread_id).toBe(threadId);
      } else if (e.event === "messages/partial") {
        const [message] = e.data as { id: string; type: string; content: string }[];
        // announced by messages/metadata first; each partial holds the whole text so far
        expect(seen.has(message!.id)).toBe(true);
        expect(message!.type).toBe("ai");
        expect(message!.content.startsWith(seen.get(message!.id)!)).toBe(true);
        seen.set(message!.id, message!.content);
      }
    }
    expect(seen.size).toBeGreaterThan(1);
    const final = (await s.client.threads.getState<RefineValues>(threadId)).values;
    const recorded = new Set([
      ...final.drafts.map((d) => d.text),
      ...final.critiques.map((c) => c.raw),
    ]);
    expect([...seen.values()].filter((t) => recorded.has(t)).length).toBeGreaterThanOrEqual(1);
    // values still carries the state, as without messages
    expect((ofType(events, "values").at(-1)!.data as RefineValues).answer).toBe(final.answer);
  });

  it("events: LangChain's v2 callback events, the root run's id the run's, mixed with updates; joinStream filters both", async () => {
    const threadId = await newThread();
    let runId = "";
    const events = await collect(
      s.client.runs.stream(threadId, "refine", {
        input: REFINE_TASK,
        config: REFINE_CONFIG,
        streamMode: ["events", "updates"],
        onRunCreated: ({ run_id }) => void (runId = run_id),
      }),
    );
    const names = new Set(events.map((e) => e.event));
    expect([...names].sort()).toEqual(["events", "metadata", "updates"]);
    const callbacks = ofType(events, "events").map(
      (e) =>
        e.data as {
          event: string;
          name: string;
          run_id: string;
          metadata: Record<string, unknown>;
          data: Record<string, unknown>;
        },
    );
    const kinds = new Set(callbacks.map((c) => c.event));
    for (const k of [
      "on_chain_start",
      "on_chain_end",
      "on_chat_model_start",
      "on_chat_model_stream",
      "on_chat_model_end",
    ])
      expect(kinds).toContain(k);
    // the run's own chunks are the updates events, not on_chain_stream events of the root
    expect(callbacks.some((c) => c.event === "on_chain_stream" && c.run_id === runId)).toBe(false);
    expect(callbacks[0]).toMatchObject({ event: "on_chain_start", run_id: runId });
    const token = callbacks.find((c) => c.event === "on_chat_model_stream")!;
    expect(token.data.chunk).toMatchObject({ type: "ai" });
    expect(token.metadata).toMatchObject({ thread_id: threadId, run_id: runId });
    expect(Object.keys(token.metadata)).not.toContain("refinery_run_deadline");
    // a join with a mode filter replays only that mode (and metadata)
    const joined = await collect(
      s.client.runs.joinStream(threadId, runId, { streamMode: "events" }),
    );
    expect(joined).toEqual(events.filter((e) => e.event !== "updates"));
  });

  it("messages in a join filter keeps messages/* events, not messages-tuple's", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "refine", {
      input: REFINE_TASK,
      config: REFINE_CONFIG,
      streamMode: ["messages", "messages-tuple"],
    });
    const all = await collect(s.client.runs.joinStream(threadId, run.run_id));
    expect(ofType(all, "messages").length).toBeGreaterThan(0);
    const only = await collect(
      s.client.runs.joinStream(threadId, run.run_id, { streamMode: "messages" as never }),
    );
    expect(only.length).toBeGreaterThan(1);
    expect(only).toEqual(
      all.filter((e) => e.event === "metadata" || e.event.startsWith("messages/")),
    );
  });

  it("debug: checkpoints, tasks and task results with step numbers", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "slow", {
        input: { topic: "d", delayMs: 0 },
        streamMode: "debug",
      }),
    );
    const debug = ofType(events, "debug").map(
      (e) => e.data as { type: string; step: number; payload: Record<string, unknown> },
    );
    expect(new Set(debug.map((d) => d.type))).toEqual(
      new Set(["checkpoint", "task", "task_result"]),
    );
    const tasks = debug.filter((d) => d.type === "task").map((d) => d.payload.name);
    expect(tasks).toEqual(["one", "two", "three"]);
    const results = debug.filter((d) => d.type === "task_result");
    expect(results.map((d) => d.payload.result)).toEqual([
      { log: "one" },
      { log: "two" },
      { log: "three" },
    ]);
    const checkpoints = debug.filter((d) => d.type === "checkpoint");
    expect(checkpoints.map((d) => d.step)).toEqual([-1, 0, 1, 2, 3]);
    // The run runner's own keys (the run's deadline) stay out of the configs clients see.
    expect(JSON.stringify(debug)).not.toContain("refinery_run_deadline");
    expect(checkpoints.at(-1)?.payload.values).toMatchObject({ log: ["one", "two", "three"] });
    for (const [i, c] of checkpoints.entries()) {
      const config = c.payload.config as { configurable: Record<string, unknown> };
      expect(typeof config.configurable.checkpoint_id).toBe("string");
      // checkpoint refs as in GET /threads/{id}/state, each chained to the one before
      expect(c.payload.checkpoint).toEqual({
        thread_id: threadId,
        checkpoint_ns: "",
        checkpoint_id: config.configurable.checkpoint_id,
        checkpoint_map: null,
      });
      const previous = checkpoints[i - 1]?.payload.checkpoint as { checkpoint_id: string };
      expect(c.payload.parent_checkpoint ?? null).toEqual(i === 0 ? null : previous);
      expect(c.payload).not.toHaveProperty("parentConfig");
      // internal config (callbacks, __pregel_* keys) stays on the server
      expect(config).not.toHaveProperty("callbacks");
      expect(Object.keys(config.configurable).filter((k) => k.startsWith("__"))).toEqual([]);
    }
    const state = await s.client.threads.getState(threadId);
    expect(checkpoints.at(-1)?.payload.checkpoint).toEqual(state.checkpoint);
  });

  it("several modes at once, each event named by its mode, in step order", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "refine", {
        input: REFINE_TASK,
        config: REFINE_CONFIG,
        streamMode: ["values", "updates", "custom", "messages-tuple", "debug"],
      }),
    );
    expect(events[0]?.event).toBe("metadata");
    expect(new Set(events.map((e) => e.event))).toEqual(
      new Set(["metadata", "values", "updates", "custom", "messages", "debug"]),
    );
    expectConsecutiveIds(events);
    const final = (await s.client.threads.getState(threadId)).values;
    expect(ofType(events, "values").at(-1)?.data).toEqual(final);
    // a node's tokens come before its update, and its update before the next node's tokens
    const firstUpdate = events.findIndex((e) => e.event === "updates");
    const firstMessage = events.findIndex((e) => e.event === "messages");
    expect(firstMessage).toBeLessThan(firstUpdate);
    expect(Object.keys(events[firstUpdate]?.data as object)).toEqual(["generate"]);
    // debug checkpoints keep the server's internals (callbacks, __ keys) to themselves
    for (const e of ofType(events, "debug")) {
      const d = e.data as { type: string; payload: { config?: Record<string, unknown> } };
      if (d.type !== "checkpoint") continue;
      expect(d.payload.config).not.toHaveProperty("callbacks");
      expect(JSON.stringify(d.payload)).not.toContain("not_implemented");
    }
  });

  it("rejects an unknown stream mode with a 422 that names the supported ones", async () => {
    const res = await postJson(`/threads/${await newThread()}/runs/stream`, {
      assistant_id: "slow",
      input: { topic: "x" },
      stream_mode: ["values", "bogus"],
    });
    expect(res.status).toBe(422);
    const text = await res.text();
    for (const mode of ["messages-tuple", "messages", "events"]) expect(text).toContain(mode);
  });
});

describe("interrupts in the stream", () => {
  it("values and updates carry __interrupt__, and a resume streams to the end", async () => {
    const threadId = await newThread();
    const events = await collect(
      s.client.runs.stream(threadId, "approval", {
        input: { topic: "s" },
        streamMode: ["values", "updates"],
      }),
    );
    const interrupt = { question: "approve?", draft: "draft:s" };
    const lastUpdate = ofType(events, "updates").at(-1)?.data as {
      __interrupt__?: { id: string; value: unknown }[];
    };
    expect(lastUpdate.__interrupt__).toEqual([{ id: expect.any(String), value: interrupt }]);
    const lastValues = ofType(events, "values").at(-1)?.data as typeof lastUpdate;
    expect(lastValues.__interrupt__?.[0]?.value).toEqual(interrupt);
    const interruptId = lastUpdate.__interrupt__?.[0]?.id;
    expect((await s.client.threads.getState(threadId)).tasks[0]?.interrupts[0]?.id).toBe(
      interruptId,
    );
    expect((await s.client.threads.get(threadId)).status).toBe("interrupted");

    const resumed = await collect(
      s.client.runs.stream(threadId, "approval", {
        command: { resume: "yes" },
        streamMode: "updates",
      }),
    );
    expect(ofType(resumed, "updates").map((e) => e.data)).toEqual([
      { review: { decision: "yes", log: "review:yes" } },
      { publish: { log: "publish:yes" } },
    ]);
    expect((await s.client.threads.get(threadId)).status).toBe("idle");
  });
});

describe("raw SSE", () => {
  it("frames are `event/data/id`, with Content-Type and Content-Location", async () => {
    const threadId = await newThread();
    const res = await postJson(`/threads/${threadId}/runs/stream`, {
      assistant_id: "slow",
      input: { topic: "raw", delayMs: 0 },
      stream_mode: ["values", "updates"],
      stream_resumable: true,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const location = res.headers.get("content-location");
    expect(location).toMatch(new RegExp(`^/threads/${threadId}/runs/[0-9a-f-]{36}$`));
    const runId = location!.split("/").at(-1);
    expect(res.headers.get("location")).toBe(`${location}/stream`);

    const { frames, rest } = await readFrames(res);
    expect(rest).toBe("");
    const events = frames.filter((f) => f.comment === undefined);
    for (const f of events) {
      expect(f.raw).toMatch(/^event: [a-z|-]+\ndata: .+\nid: \d+-\d+$/);
    }
    expect(events[0]?.event).toBe("metadata");
    expect(events[0]?.data).toEqual({ run_id: runId, attempt: 1 });
    expect(events.map((f) => f.event)).toEqual([
      "metadata",
      "values",
      "updates",
      "values",
      "updates",
      "values",
      "updates",
      "values",
    ]);
    expect(events.map((f) => seqOf(f.id))).toEqual(events.map((_, i) => i + 1));
    // no terminal `end` event: the server just closes the stream
    expect(events.at(-1)?.event).toBe("values");
  });

  it("stateless streams name the run in Content-Location", async () => {
    const res = await postJson(`/runs/stream`, {
      assistant_id: "slow",
      input: { topic: "raw-sl", delayMs: 0 },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-location")).toMatch(/^\/runs\/[0-9a-f-]{36}$/);
    const { frames } = await readFrames(res);
    expect(frames.filter((f) => f.event === "values").at(-1)?.data).toMatchObject({
      log: ["one", "two", "three"],
    });
  });

  it("sends `: ping` comments while the run is idle", async () => {
    const res = await postJson(`/threads/${await newThread()}/runs/stream`, {
      assistant_id: "slow",
      input: { topic: "ping", delayMs: 200 },
      stream_mode: "updates",
    });
    const { frames } = await readFrames(res);
    const pings = frames.filter((f) => f.comment !== undefined);
    // three steps of 200 ms with a ping every 50 ms
    expect(pings.length).toBeGreaterThanOrEqual(4);
    expect(pings.every((f) => f.raw === ": ping")).toBe(true);
    // pings sit between events, never inside a frame
    const updates = frames.filter((f) => f.event === "updates");
    expect(updates).toHaveLength(3);
    const firstPing = frames.findIndex((f) => f.comment !== undefined);
    const firstUpdate = frames.findIndex((f) => f.event === "updates");
    expect(firstPing).toBeLessThan(firstUpdate);
  });

  it("an error in the graph yields `event: error` with {error, message}, then the stream closes", async () => {
    const threadId = await newThread();
    const res = await postJson(`/threads/${threadId}/runs/stream`, {
      assistant_id: "failing",
      input: { topic: "e" },
    });
    const { frames, rest } = await readFrames(res);
    expect(rest).toBe("");
    const events = frames.filter((f) => f.comment === undefined);
    expect(events[0]?.event).toBe("metadata");
    const last = events.at(-1);
    expect(last?.event).toBe("error");
    expect(last?.data).toEqual({
      error: expect.any(String),
      message: "boom: this node always fails",
    });
    expect(events.filter((f) => f.event === "error")).toHaveLength(1);

    // the SDK surfaces the same event
    const viaSdk = await collect(
      s.client.runs.stream(threadId, "failing", { input: { topic: "e2" } }),
    );
    expect(viaSdk.at(-1)?.event).toBe("error");
    expect((viaSdk.at(-1)?.data as { message: string }).message).toBe(
      "boom: this node always fails",
    );
    expect((await s.client.threads.get(threadId)).status).toBe("error");
  });
});

describe("join-stream and reconnect", () => {
  it("runs.joinStream of a background run receives all of its events", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "js", delayMs: 30 },
      streamMode: ["values", "updates"],
    });
    const events = await collect(s.client.runs.joinStream(threadId, run.run_id));
    expect(events[0]).toMatchObject({ event: "metadata", data: { run_id: run.run_id } });
    expect(ofType(events, "updates").map((e) => Object.keys(e.data as object)[0])).toEqual([
      "one",
      "two",
      "three",
    ]);
    expectConsecutiveIds(events);
    const final = (await s.client.threads.getState(threadId)).values;
    expect(ofType(events, "values").at(-1)?.data).toEqual(final);

    // joining the finished run replays the same events
    const again = await collect(s.client.runs.joinStream(threadId, run.run_id));
    expect(again).toEqual(events);
  });

  it("runs.joinStream with streamMode gets only those modes' events, with their ids", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "jm", delayMs: 30 },
      streamMode: ["values", "updates"],
    });
    const all = await collect(s.client.runs.joinStream(threadId, run.run_id));
    const updates = await collect(
      s.client.runs.joinStream(threadId, run.run_id, { streamMode: "updates" }),
    );
    expect(updates.map((e) => e.event)).toEqual(["metadata", "updates", "updates", "updates"]);
    // The same events, ids included, as in the unfiltered stream: a reconnect resumes correctly.
    expect(updates).toEqual(all.filter((e) => e.event !== "values"));
    const both = await collect(
      s.client.runs.joinStream(threadId, run.run_id, { streamMode: ["updates", "values"] }),
    );
    expect(both).toEqual(all);
  });

  it("runs.joinStream of a queued run waits for it to start", async () => {
    const threadId = await newThread();
    const first = await s.client.runs.create(threadId, "slow", {
      input: { topic: "jq1", delayMs: 50 },
    });
    const queued = await s.client.runs.create(threadId, "slow", {
      input: { topic: "jq2", delayMs: 0 },
      streamMode: "updates",
      multitaskStrategy: "enqueue",
    });
    expect((await s.client.runs.get(threadId, queued.run_id)).status).toBe("pending");
    const events = await collect(s.client.runs.joinStream(threadId, queued.run_id));
    expect(events[0]).toMatchObject({ event: "metadata", data: { run_id: queued.run_id } });
    expect(ofType(events, "updates")).toHaveLength(3);
    expectConsecutiveIds(events);
    expect((await s.client.runs.get(threadId, first.run_id)).status).toBe("success");
    expect((await s.client.runs.get(threadId, queued.run_id)).status).toBe("success");
  });

  it("reconnecting with lastEventId resumes without gap or duplicate", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "rc", delayMs: 100 },
      streamMode: ["values", "updates"],
    });

    const first: Event[] = [];
    for await (const e of s.client.runs.joinStream(threadId, run.run_id)) {
      first.push(e);
      if (first.length === 3) break; // metadata, values (input), updates (one)
    }
    expect(first.map((e) => e.event)).toEqual(["metadata", "values", "updates"]);
    // the run goes on while nobody listens
    const lastSeen = first.at(-1)?.id;
    const rest = await collect(
      s.client.runs.joinStream(threadId, run.run_id, { lastEventId: lastSeen }),
    );
    expect(rest.length).toBeGreaterThan(0);

    const all = [...first, ...rest];
    const seqs = all.map((e) => seqOf(e.id));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(rest.some((e) => e.event === "metadata")).toBe(false);
    expect(ofType(all, "updates").map((e) => Object.keys(e.data as object)[0])).toEqual([
      "one",
      "two",
      "three",
    ]);
    const final = (await s.client.threads.getState(threadId)).values;
    expect(all.at(-1)).toMatchObject({ event: "values", data: final });
    expect((await s.client.runs.get(threadId, run.run_id)).status).toBe("success");
  });

  it("a raw reconnect with the Last-Event-ID header gets only the later events", async () => {
    const threadId = await newThread();
    const run = await s.client.runs.create(threadId, "slow", {
      input: { topic: "hdr", delayMs: 0 },
      streamMode: "updates",
    });
    await s.client.runs.join(threadId, run.run_id);
    const res = await fetch(`${s.url}/threads/${threadId}/runs/${run.run_id}/stream`, {
      headers: { "Last-Event-ID": "1-2" },
    });
    expect(res.status).toBe(200);
    const { frames } = await readFrames(res);
    const events = frames.filter((f) => f.comment === undefined);
    expect(events.map((f) => f.id)).toEqual(["1-3", "1-4"]);
    expect(events.map((f) => f.data)).toEqual([
      { two: { log: "two" } },
      { three: { log: "three" } },
    ]);
  });
});

describe("stateless streams", () => {
  it("the Location of a stateless stream serves the run's events", async () => {
    const res = await postJson(`/runs/stream`, {
      assistant_id: "slow",
      input: { topic: "sl-loc", delayMs: 0 },
      stream_mode: "updates",
      stream_resumable: true,
    });
    const location = res.headers.get("location");
    expect(location).toMatch(/^\/runs\/[0-9a-f-]{36}\/stream$/);
    const { frames } = await readFrames(res);
    expect(frames.filter((f) => f.event === "updates")).toHaveLength(3);

    // the SDK reconnects there (with Last-Event-ID) when the connection drops
    const again = await fetch(`${s.url}${location}`, { headers: { "Last-Event-ID": "1-2" } });
    expect(again.status).toBe(200);
    expect(again.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const replay = (await readFrames(again)).frames.filter((f) => f.comment === undefined);
    expect(replay.map((f) => f.id)).toEqual(["1-3", "1-4"]);

    const unknown = await fetch(`${s.url}/runs/${randomUUID()}/stream`);
    expect(unknown.status).toBe(404);
  });

  it("a stream not asked to be resumable has no Location, so the SDK makes no extra request after it (issue 22)", async () => {
    const res = await postJson(`/runs/stream`, {
      assistant_id: "slow",
      input: { topic: "sl-noloc", delayMs: 0 },
      stream_mode: "updates",
    });
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("content-location")).toMatch(/^\/runs\/[0-9a-f-]{36}$/);
    await readFrames(res);
    const requests: string[] = [];
    const client = new Client({
      apiUrl: s.url,
      callerOptions: { maxRetries: 0 },
      onRequest: (url, init) => {
        requests.push(`${init.method ?? "GET"} ${new URL(url).pathname}`);
        return init;
      },
    });
    const thread = await client.threads.create();
    requests.length = 0;
    for await (const chunk of client.runs.stream(thread.thread_id, "slow", {
      input: { topic: "sl-noloc" },
      streamMode: "updates",
    })) {
      void chunk;
    }
    expect(requests).toEqual([`POST /threads/${thread.thread_id}/runs/stream`]);
  });
});

describe("disconnects", () => {
  it('on_disconnect "cancel" cancels the run when the client goes away', async () => {
    const threadId = await newThread();
    const controller = new AbortController();
    let runId: string | undefined;
    const seen: Event[] = [];
    try {
      for await (const e of s.client.runs.stream(threadId, "slow", {
        input: { topic: "od", delayMs: 400 },
        streamMode: "updates",
        onDisconnect: "cancel",
        signal: controller.signal,
        onRunCreated: (m) => (runId = m.run_id),
      })) {
        seen.push(e);
        if (e.event === "updates") controller.abort();
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
    expect(seen.map((e) => e.event)).toEqual(["metadata", "updates"]);
    const status = await eventually(async () => {
      const run = await s.client.runs.get(threadId, runId!);
      return run.status === "pending" || run.status === "running" ? undefined : run.status;
    }, "the run to be cancelled");
    expect(status).toBe("interrupted");
    // the step that had finished is kept; the rest never ran
    const state = await s.client.threads.getState<StepValues>(threadId);
    expect(state.values.log).toEqual(["one"]);
    expect((await s.client.threads.get(threadId)).status).not.toBe("busy");
  });

  it("by default a disconnected stream leaves the run running to the end", async () => {
    const threadId = await newThread();
    let runId: string | undefined;
    for await (const e of s.client.runs.stream(threadId, "slow", {
      input: { topic: "oc", delayMs: 100 },
      streamMode: "updates",
      onRunCreated: (m) => (runId = m.run_id),
    })) {
      if (e.event === "metadata") break;
    }
    const out = await valuesOf<StepValues>(s.client.runs.join(threadId, runId!));
    expect(out.log).toEqual(["one", "two", "three"]);
    expect((await s.client.runs.get(threadId, runId!)).status).toBe("success");
  });
});

describe("the replay log of a long run", () => {
  // Long runs (e.g. token streams of real models) outgrow the replay cap; ids must stay unique.
  it("keeps event ids increasing after the oldest events are dropped", async () => {
    const hub = new StreamHub({ maxEventsPerRun: 3 });
    hub.open("run", 1);
    for (let i = 1; i <= 6; i++) hub.publish("run", "values", { i });
    hub.close("run", { status: "success" });
    const read = async (lastEventId?: string) => {
      const out: RunEvent[] = [];
      for await (const e of hub.subscribe("run", lastEventId)) out.push(e);
      return out;
    };
    expect((await read()).map((e) => [e.id, e.data])).toEqual([
      ["1-4", { i: 4 }],
      ["1-5", { i: 5 }],
      ["1-6", { i: 6 }],
    ]);
    expect((await read("1-4")).map((e) => e.id)).toEqual(["1-5", "1-6"]);
    expect(await read("1-6")).toEqual([]);
  });
});

describe("a client that stops reading, then goes away", () => {
  // With a full socket buffer the writer waits for "drain"; a disconnect must end that wait,
  // or the stream (its subscription and keep-alive timer) lives on forever.
  it("ends the SSE writer", async () => {
    let writer: Promise<void> | undefined;
    const app = express();
    app.get("/sse", (_req, res) => {
      async function* endless(): AsyncGenerator<RunEvent> {
        for (let i = 1; ; i++) {
          yield { id: `1-${i}`, event: "values", data: { pad: "x".repeat(64 * 1024) } };
          await new Promise((r) => setImmediate(r));
        }
      }
      writer = writeSse(res, endless(), { keepAliveMs: 60_000 });
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    try {
      const { port } = server.address() as AddressInfo;
      const socket = connect(port, "127.0.0.1");
      socket.write("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
      socket.pause(); // never read: the server's writes back up
      await eventually(async () => (writer ? true : undefined), "the stream to start");
      await new Promise((r) => setTimeout(r, 200));
      socket.destroy();
      const ended = await Promise.race([
        writer!.then(() => "ended"),
        new Promise((r) => setTimeout(() => r("still waiting"), 2_000)),
      ]);
      expect(ended).toBe("ended");
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
