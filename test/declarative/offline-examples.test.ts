// The example graphs on the offline simulated model, as a user without an API key meets them: each
// registered on a real server with POST /graphs and run with the `offline-input` its file
// documents. Each must show the path it exists for, labelled simulated; a kind written in
// TypeScript that was not loaded is refused with the way to load it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalRequest } from "../../core/approval.ts";
import type { RefineStateType } from "../../core/state.ts";

type Values = RefineStateType & { vars?: Record<string, unknown> };
import { startTestServer, type TestServer } from "../support/server.ts";
import { EXAMPLES_DIR } from "./support.ts";

let s: TestServer;
beforeAll(async () => {
  // No provider: the server's own, which is the simulated model without OPENAI_API_KEY.
  s = await startTestServer({ env: { REFINERY_RUN_THREADS: "0" } });
});
afterAll(async () => s?.close());

function example(file: string): { yaml: string; input: Record<string, unknown> } {
  const yaml = readFileSync(join(EXAMPLES_DIR, file), "utf8");
  const line = /^# offline-input: (.*)$/m.exec(yaml);
  if (!line?.[1]) throw new Error(`${file} documents no offline-input`);
  return { yaml, input: JSON.parse(line[1]) as Record<string, unknown> };
}

async function register(yaml: string): Promise<Response> {
  return fetch(`${s.url}/graphs`, {
    method: "POST",
    headers: { "content-type": "application/yaml" },
    body: yaml,
  });
}

async function runOn(graphId: string, input: Record<string, unknown>) {
  const thread = await s.client.threads.create();
  // A run that stops at an interrupt answers /wait with the interrupt (as LangGraph does): the
  // values are the thread's state.
  await s.client.runs.wait(thread.thread_id, graphId, { input });
  const values = (await s.client.threads.getState(thread.thread_id)).values as unknown as Values;
  return { threadId: thread.thread_id, values };
}

async function pending(threadId: string): Promise<ApprovalRequest | undefined> {
  const t = await s.client.threads.get(threadId);
  return Object.values(t.interrupts ?? {})
    .flat()
    .map((i) => (i as { value?: unknown }).value as ApprovalRequest)[0];
}

describe("example graphs on the offline model", () => {
  it("json-extraction: the first draft fails the schema and the repair, given the failed check, passes", async () => {
    const { yaml, input } = example("json-extraction.yaml");
    expect((await register(yaml)).status).toBe(201);
    const { values } = await runOn("json-extraction", input);
    expect(values.simulated).toBe(true);
    expect(values.drafts).toHaveLength(2);
    expect(values.verdicts.map((v) => [v.iteration, v.verifierId, v.pass])).toEqual([
      [1, "record", false],
      [2, "record", true],
    ]);
    expect(values.stopReason).toBe("accepted");
    expect(JSON.parse(values.answer ?? "")).toEqual({
      name: "Ada Lovelace",
      age: 36,
      email: "ada@example.com",
    });
  });

  it("support-reply: an unsigned draft goes to a reviewer, not out; an edit is checked again, then approve sends", async () => {
    const { yaml, input } = example("support-reply.yaml");
    expect((await register(yaml)).status).toBe(201);
    const { threadId, values } = await runOn("support-reply", input);
    expect(values.simulated).toBe(true);
    expect(values.vars?.status).toBeUndefined();
    expect((await s.client.threads.get(threadId)).status).toBe("interrupted");
    const request = await pending(threadId);
    expect(request?.type).toBe("approval");
    // Every draft failed the policy (it is unsigned); the newest may not have been checked
    // again when the revision changed nothing.
    expect(values.verdicts.length).toBeGreaterThan(0);
    expect(values.verdicts.every((v) => v.verifierId === "policy" && !v.pass)).toBe(true);
    expect(request?.draft).not.toMatch(/The Support Team/);

    const text =
      "Hello,\nI am sorry your parcel arrived broken. We are sending a replacement today.\nThe Support Team";
    await s.client.runs.wait(threadId, "support-reply", {
      command: { resume: { action: "edit", text } },
    });
    const again = await pending(threadId);
    expect(again).toMatchObject({ draft: text });
    expect(again?.verdicts).toEqual([
      expect.objectContaining({ verifierId: "policy", pass: true }),
    ]);
    const done = (await s.client.runs.wait(threadId, "support-reply", {
      command: { resume: { action: "approve" } },
    })) as unknown as Values;
    expect(done).toMatchObject({ stopReason: "approved", answer: text });
    expect(done.vars).toMatchObject({ status: "ready_to_send" });
  });

  it("translation without REFINERY_NODE_KINDS: a 422 naming the node's kind and how to load it", async () => {
    const res = await register(example("translation.yaml").yaml);
    expect(res.status).toBe(422);
    const body = (await res.json()) as { field: string; message: string };
    expect(body.field).toBe("nodes.back.kind");
    expect(body.message).toMatch(/unknown node kind "back_translate"/);
    expect(body.message).toMatch(
      /REFINERY_NODE_KINDS=\.\/graphs\/examples\/back-translate\.ts npm start/,
    );
  });
});
