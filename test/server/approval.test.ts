// Human-in-the-loop over HTTP: the approvals queue, resume validation (422, thread stays
// interrupted), racing reviewers (one wins, the other gets 409), the friendly endpoint, live
// feedback, deadlines (also across a restart) and the signed, retried webhook.
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RefineStateType } from "../../core/state.ts";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import { ScriptedChatModel, scriptedProvider } from "../support/scripted-model.ts";
import { FIXTURE_CONFIG, startTestServer, type TestServer } from "../support/server.ts";
import { databaseEnv } from "../support/test-backend.ts";

const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
const REGRESSES = "What is 3 + 3?";
let model: ScriptedChatModel;
let s: TestServer;

beforeAll(async () => {
  let revisions = 0;
  // The task REGRESSES gets a right first draft and wrong revisions (item 10's story).
  const regresses = (messages: { content: unknown }[]) =>
    messages.some((m) => String(m.content).includes(REGRESSES));
  model = new ScriptedChatModel({
    generate: (m) => (regresses(m) ? "3 + 3 = 6\nAnswer: 6" : "2 + 2 = 4\nAnswer: 4"),
    critique: () => PASS,
    revise: (m) =>
      regresses(m)
        ? `Revision ${++revisions}: 3 + 3 = 7\nAnswer: 7`
        : `Revision ${++revisions}: 2 + 2 = 4\nAnswer: 4`,
  });
  s = await startTestServer({
    provider: scriptedProvider(model),
    // The webhook receiver below listens on loopback.
    env: { REFINERY_APPROVAL_POLL_MS: "100", REFINERY_OUTBOUND_ALLOW: "127.0.0.1" },
  });
});
afterAll(async () => s?.close());

const approvalConfig = (approval: Record<string, unknown>) => ({
  configurable: {
    approval,
    verifiers: [{ kind: "answer_match", expected: 4 }],
    retry: { retries: 0 },
  },
});

async function pausedThread(
  approval: Record<string, unknown> = { mode: "final" },
): Promise<string> {
  const thread = await s.client.threads.create();
  await s.client.runs.wait(thread.thread_id, "refine", {
    input: { task: "What is 2 + 2?" },
    config: approvalConfig(approval),
  });
  expect((await s.client.threads.get(thread.thread_id)).status).toBe("interrupted");
  return thread.thread_id;
}

const post = (path: string, body: unknown) =>
  fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

async function until<T>(f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

const idle = (threadId: string) =>
  until(async () => {
    const t = await s.client.threads.get(threadId);
    return t.status === "idle" ? (t.values as unknown as RefineStateType) : undefined;
  });

describe("approvals over HTTP", () => {
  it("lists pending approvals with what a reviewer needs", async () => {
    const tid = await pausedThread();
    const list = (await (await fetch(`${s.url}/approvals`)).json()) as {
      thread_id: string;
      task: string;
      request: Record<string, unknown>;
    }[];
    const item = list.find((a) => a.thread_id === tid);
    expect(item?.task).toBe("What is 2 + 2?");
    expect(item?.request).toMatchObject({
      type: "approval",
      draft: "2 + 2 = 4\nAnswer: 4",
      stopReason: "accepted",
      verdicts: [expect.objectContaining({ pass: true })],
    });
  });

  it("refuses a malformed resume with a 422 that says what is expected, and the thread stays interrupted", async () => {
    const tid = await pausedThread();
    await expect(
      s.client.runs.wait(tid, "refine", { command: { resume: { action: "reject" } } }),
    ).rejects.toThrow(/422.*reject needs feedback/);
    await expect(
      s.client.runs.wait(tid, "refine", { command: { resume: { verdict: "ok" } } }),
    ).rejects.toThrow(/422.*approve.*reject.*edit.*abort/);
    const res = await post(`/threads/${tid}/approval`, { action: "edit" });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ field: expect.stringMatching(/text/) });
    expect((await s.client.threads.get(tid)).status).toBe("interrupted");
    expect(await s.client.runs.list(tid)).toHaveLength(1);
  });

  it("two reviewers answering at once: exactly one wins, the other gets 409", async () => {
    const tid = await pausedThread();
    const [a, b] = await Promise.all([
      post(`/threads/${tid}/approval`, { action: "approve" }),
      post(`/threads/${tid}/approval`, { action: "abort" }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const state = await idle(tid);
    expect(state.approvals).toHaveLength(1);
  });

  it("reject with feedback revises, then approve finishes; both decisions are in the history", async () => {
    const tid = await pausedThread();
    expect(
      (await post(`/threads/${tid}/approval`, { action: "reject", feedback: "explain the sum" }))
        .status,
    ).toBe(200);
    await until(async () =>
      (await s.client.threads.get(tid)).status === "interrupted" &&
      (await s.client.runs.list(tid)).every((r) => r.status !== "pending" && r.status !== "running")
        ? true
        : undefined,
    );
    const last = model.callsFor("revise").at(-1);
    expect(last?.messages[1]?.content).toMatch(/explain the sum/);
    expect((await post(`/threads/${tid}/approval`, { action: "approve" })).status).toBe(200);
    const state = await idle(tid);
    expect(state.stopReason).toBe("approved");
    expect(state.answer).toMatch(/^Revision/);
    expect(state.approvals.map((a) => a.action)).toEqual(["reject", "approve"]);
    expect((await post(`/threads/${tid}/approval`, { action: "approve" })).status).toBe(409);
  });

  it("a reject that discards a right draft: the next approval, the state and the export say the offered answer fails and draft 1 passed", async () => {
    const thread = await s.client.threads.create();
    const tid = thread.thread_id;
    await s.client.runs.wait(tid, "refine", {
      input: { task: REGRESSES },
      config: {
        configurable: {
          approval: { mode: "final" },
          maxIterations: 3,
          verifiers: [{ kind: "answer_match", id: "answer", expected: 6 }],
          retry: { retries: 0 },
        },
      },
    });
    const pending = async () => {
      const list = (await (await fetch(`${s.url}/approvals`)).json()) as {
        thread_id: string;
        request: Record<string, unknown>;
      }[];
      return list.find((a) => a.thread_id === tid)?.request;
    };
    // Draft 1 is right: nothing to warn about.
    expect(await pending()).toMatchObject({
      iteration: 1,
      hardChecks: { passed: 1, total: 1, failed: [] },
      earlierPassing: null,
      warning: null,
    });
    await s.client.runs.wait(tid, "refine", {
      command: { resume: { action: "reject", feedback: "show your working" } },
    });
    const second = await pending();
    expect(second).toMatchObject({
      stopReason: "max_iterations",
      hardChecks: { passed: 0, total: 1, failed: ["answer"] },
      earlierPassing: { iteration: 1, draft: "3 + 3 = 6\nAnswer: 6" },
    });
    expect(second?.iteration).toBeGreaterThan(1);
    expect(second?.draft).toMatch(/Answer: 7/);
    expect(second?.warning).toBe(
      `The answer offered (draft ${String(second?.iteration)}) fails hard check answer; draft 1 passed every hard check.`,
    );

    await s.client.runs.wait(tid, "refine", { command: { resume: { action: "approve" } } });
    const done = await idle(tid);
    expect(done.stopReason).toBe("approved");
    expect(done.answer).toMatch(/Answer: 7/);

    // The default SFT export leaves the failing answer out; verdict=any asks for it, labelled.
    const exported = async (query: string) =>
      (await (await fetch(`${s.url}/export?${query}`)).text())
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { metadata: Record<string, unknown> })
        .filter((l) => l.metadata.thread_id === tid);
    const labelled = await until(async () => {
      const lines = await exported("format=sft&verdict=any");
      return lines.length ? lines : undefined;
    });
    expect(labelled[0]?.metadata).toMatchObject({
      verified: false,
      human_approved: true,
      failed_hard_checks: ["answer"],
      earlier_passing_iteration: 1,
    });
    expect(await exported("format=sft")).toEqual([]);
  });

  it("live feedback sent while waiting reaches the next revise and is stored in the state", async () => {
    const tid = await pausedThread();
    const res = await post(`/threads/${tid}/feedback`, { text: "keep it under 10 words" });
    expect(res.status).toBe(200);
    expect((await post(`/threads/${tid}/feedback`, { text: "" })).status).toBe(422);
    await post(`/threads/${tid}/approval`, { action: "reject", feedback: "shorter" });
    await until(async () =>
      (await s.client.threads.get(tid)).status === "interrupted" &&
      (await s.client.runs.list(tid)).every((r) => r.status === "success")
        ? true
        : undefined,
    );
    expect(model.callsFor("revise").at(-1)?.messages[1]?.content).toMatch(
      /keep it under 10 words[\s\S]*shorter|shorter[\s\S]*keep it under 10 words/,
    );
    const state = (await s.client.threads.getState(tid)).values as unknown as RefineStateType;
    expect(state.feedback.map((f) => f.text)).toEqual(
      expect.arrayContaining(["keep it under 10 words", "shorter"]),
    );
  });

  it("a deadline with onExpiry approve is applied by the server", async () => {
    const tid = await pausedThread({ mode: "final", deadlineSeconds: 1, onExpiry: "approve" });
    const state = await idle(tid);
    expect(state.stopReason).toBe("approved");
    expect(state.approvals[0]?.feedback).toMatch(/deadline/);
  });

  it("the webhook is POSTed once the approval is pending, HMAC-signed, and retried after a failure", async () => {
    const received: { body: string; signature: string | undefined }[] = [];
    let calls = 0;
    const hook = createServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", (d) => (body += String(d)));
      req.on("end", () => {
        calls++;
        received.push({
          body,
          signature: req.headers["x-refinery-signature"] as string | undefined,
        });
        res.statusCode = calls === 1 ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    try {
      const tid = await pausedThread({ mode: "final", webhook: { url, secret: "s3cret-key" } });
      await until(async () => (received.length >= 2 ? true : undefined));
      const last = received[1];
      expect(JSON.parse(last?.body ?? "{}")).toMatchObject({
        event: "approval.pending",
        thread_id: tid,
        request: { type: "approval" },
      });
      expect(last?.signature).toBe(
        `sha256=${createHmac("sha256", "s3cret-key")
          .update(last?.body ?? "")
          .digest("hex")}`,
      );
      await new Promise((r) => setTimeout(r, 400));
      expect(received).toHaveLength(2);
    } finally {
      hook.close();
    }
  });
});

describe("approval deadlines across a restart", () => {
  it("a deadline that passes while the server is down is applied when it comes back", async () => {
    const first = await startTestServer({
      provider: scriptedProvider(model),
      env: { REFINERY_APPROVAL_POLL_MS: "60000" },
    });
    const thread = await first.client.threads.create();
    await first.client.runs.wait(thread.thread_id, "refine", {
      input: { task: "What is 2 + 2?" },
      config: approvalConfig({ mode: "final", deadlineSeconds: 1, onExpiry: "reject" }),
    });
    await first.running.close(1000);
    await new Promise((r) => setTimeout(r, 1200));
    const second = await startServer({
      env: { ...databaseEnv(first.dbPath), REFINERY_APPROVAL_POLL_MS: "100" },
      configPath: FIXTURE_CONFIG,
      port: 0,
      log: silentLogger,
      provider: scriptedProvider(model),
      pollMs: 200,
    });
    try {
      const get = async () =>
        (await (await fetch(`${second.url}/threads/${thread.thread_id}`)).json()) as {
          values: RefineStateType;
        };
      const values = await until(async () => {
        const t = await get();
        return t.values.approvals?.length ? t.values : undefined;
      });
      expect(values.approvals[0]).toMatchObject({
        action: "reject",
        feedback: expect.stringMatching(/deadline/),
      });
    } finally {
      await second.close(1000);
      await first.close().catch(() => undefined);
    }
  });
});

describe("resumes as front ends send them: input {} alongside command", () => {
  it("the exact request a popular chat UI sends is accepted, and the resumed stream follows", async () => {
    const t = await s.client.threads.create();
    await s.client.runs.wait(t.thread_id, "approval", { input: { topic: "ui" } });
    expect((await s.client.threads.get(t.thread_id)).status).toBe("interrupted");
    const res = await post(`/threads/${t.thread_id}/runs/stream`, {
      input: {},
      command: { resume: { decisions: [{ type: "approve" }] } },
      stream_mode: ["messages-tuple", "values", "custom"],
      stream_resumable: false,
      assistant_id: "approval",
      on_disconnect: "cancel",
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/event: values/);
    expect(text).toContain("publish:");
    expect((await s.client.threads.get(t.thread_id)).status).toBe("idle");
  });

  it("reject, edit and approve on the refine graph, each with input {} and command", async () => {
    const tid = await pausedThread();
    const resume = (thread: string, decision: Record<string, unknown>) =>
      s.client.runs.wait(thread, "refine", { input: {}, command: { resume: decision } });
    await resume(tid, { action: "reject", feedback: "show the addition" });
    expect((await s.client.threads.get(tid)).status).toBe("interrupted");
    await resume(tid, {
      action: "edit",
      text: "2 + 2 = 4, since two and two make four.\nAnswer: 4",
    });
    const edited = await idle(tid);
    expect(edited.approvals.map((a) => a.action)).toEqual(["reject", "edit"]);
    expect(edited.answer).toMatch(/two and two make four/);
    const other = await pausedThread();
    await resume(other, { action: "approve" });
    const approved = await idle(other);
    expect(approved.approvals.map((a) => a.action)).toEqual(["approve"]);
    expect(approved.stopReason).toBe("approved");
  });
});
