// The learning loop over HTTP on the real server: lessons learned from a finished run and kept
// across a restart, lessons CRUD, run ratings (feedback) and the streamed JSONL export, with the
// 4xx answers for bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../server/log.ts";
import { startServer } from "../../server/start.ts";
import { ScriptedChatModel, scriptedProvider } from "../support/scripted-model.ts";
import { FIXTURE_CONFIG, startTestServer, type TestServer } from "../support/server.ts";
import { databaseEnv } from "../support/test-backend.ts";
import { eventually } from "../support/wait.ts";

const REVISE = '{"verdict":"revise","score":0.2,"issues":["The sum of 2 and 2 is 4, not 5."]}';
const PASS = '{"verdict":"pass","score":0.95,"issues":[]}';
let model: ScriptedChatModel;
let s: TestServer;

const config = {
  configurable: { verifiers: [{ kind: "answer_match", expected: 4 }], retry: { retries: 0 } },
};

beforeAll(async () => {
  model = new ScriptedChatModel({
    // The first draft is wrong unless the prompt carries a lesson from an earlier run.
    generate: (messages) =>
      String(messages.at(-1)?.content).includes("Lessons from earlier")
        ? "2 + 2 = 4\nAnswer: 4"
        : "2 + 2 = 5\nAnswer: 5",
    critique: (messages) =>
      String(messages.at(-1)?.content).includes("Answer: 5") ? REVISE : PASS,
    revise: () => "2 + 2 = 4\nAnswer: 4",
  });
  s = await startTestServer({ provider: scriptedProvider(model) });
});
afterAll(async () => s?.close());

async function http(path: string, init: RequestInit & { json?: unknown } = {}) {
  const res = await fetch(`${s.url}${path}`, {
    ...init,
    ...(init.json !== undefined
      ? { body: JSON.stringify(init.json), headers: { "content-type": "application/json" } }
      : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // JSONL or plain text
  }
  return {
    status: res.status,
    body: body as Record<string, unknown> & unknown[],
    text,
    headers: res.headers,
  };
}

async function refinedRun(task = "What is 2 + 2?", extra: Record<string, unknown> = {}) {
  const thread = await s.client.threads.create();
  const run = await s.client.runs.create(thread.thread_id, "refine", {
    input: { task },
    config,
    ...extra,
  });
  await s.client.runs.join(thread.thread_id, run.run_id);
  return { thread_id: thread.thread_id, run_id: run.run_id };
}

describe("lessons learned from runs", () => {
  it("learns from a run whose revision fixed a failed check and uses it in the next similar task", async () => {
    const first = await refinedRun(
      "Add the apples: 2 apples in a basket plus 2 apples on the table.",
    );
    type L = { id: string; text: string; evidence: unknown[]; uses: number; helped: number };
    // The executor learns after the clients have the run's result.
    const learned = await eventually(async () => {
      const lessons = await http("/assistants/refine/lessons");
      expect(lessons.status).toBe(200);
      return (lessons.body as unknown as L[]).find((l) => l.text.startsWith("The sum of 2"));
    }, "the lesson of the first run");
    expect(learned.text).toBe("The sum of 2 and 2 is 4, not 5.");
    expect(learned.evidence).toContainEqual({ ...first, iteration: 1 });

    // A similar task: the lesson is in generate's prompt, the first draft passes, the lesson is credited.
    const calls = model.calls.length;
    const second = await refinedRun(
      "Count the apples: 2 apples in a bag and 2 apples on the table.",
    );
    const prompt = model.calls
      .slice(calls)
      .find((c) => c.role === "generate")!
      .messages.at(-1)!.content;
    expect(prompt).toContain("Lessons from earlier, similar tasks");
    expect(prompt).toContain("- The sum of 2 and 2 is 4, not 5. (learned on: apple,");
    const state = (await s.client.threads.getState(second.thread_id)).values as {
      lessons: { id: string }[];
      drafts: unknown[];
    };
    expect(state.lessons.map((l) => l.id)).toContain(learned.id);
    expect(state.drafts).toHaveLength(1);
    const after = await eventually(async () => {
      const lesson = (await http(`/assistants/refine/lessons/${learned.id}`)).body as unknown as L;
      return lesson.uses > 0 ? lesson : undefined;
    }, "the lesson's use by the second run");
    expect(after).toMatchObject({ uses: 1, helped: 1 });
    const feedback = await http(`/threads/${second.thread_id}/runs/${second.run_id}/feedback`);
    expect(feedback.body.lessons_used).toContain(learned.id);

    // A run with the memory switched off neither gets nor records lessons.
    const off = await s.client.threads.create();
    await s.client.runs.wait(off.thread_id, "refine", {
      input: { task: "Count the apples: 2 apples in a box and 2 apples on a plate." },
      config: { configurable: { ...config.configurable, memory: { enabled: false } } },
    });
    const offState = (await s.client.threads.getState(off.thread_id)).values as {
      drafts: unknown[];
    };
    expect(offState.drafts).toHaveLength(2);

    // The same lesson from another run is merged, not duplicated.
    await refinedRun("What is 2 + 2, exactly?");
    const again = await http("/assistants/refine/lessons");
    expect(
      (again.body as unknown as L[]).filter((l) => l.text.startsWith("The sum of 2")),
    ).toHaveLength(1);
  });

  it("lists, searches, adds, edits, pins and deletes lessons; bad input is a 4xx", async () => {
    const created = await http("/assistants/refine/lessons", {
      method: "POST",
      json: {
        text: "State the unit of every quantity in the answer.",
        keywords: ["unit", "quantity"],
      },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({ source: "manual", pinned: false, uses: 0 });
    expect(created.body).not.toHaveProperty("embedding");
    const dup = await http("/assistants/refine/lessons", {
      method: "POST",
      json: { text: "state the unit of every quantity in the answer" },
    });
    expect(dup.status).toBe(200);
    expect(dup.body.id).toBe(id);
    const found = await http("/assistants/refine/lessons/search", {
      method: "POST",
      json: { task: "Give the quantity of flour with its unit" },
    });
    expect((found.body as unknown as { id: string }[]).map((h) => h.id)).toContain(id);
    const pinned = await http(`/assistants/refine/lessons/${id}`, {
      method: "PATCH",
      json: { pinned: true },
    });
    expect(pinned.body).toMatchObject({ id, pinned: true });
    expect((await http(`/assistants/refine/lessons/${id}`)).body).toMatchObject({ pinned: true });

    const tooLong = await http("/assistants/refine/lessons", {
      method: "POST",
      json: { text: "x".repeat(501) },
    });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body).toMatchObject({ field: "text" });
    const unknownField = await http(`/assistants/refine/lessons/${id}`, {
      method: "PATCH",
      json: { txt: "a" },
    });
    expect(unknownField.status).toBe(422);
    expect((await http("/assistants/refine/lessons/nope")).status).toBe(404);
    expect((await http("/assistants/no-such-graph/lessons")).status).toBe(404);
    expect((await http("/assistants/refine/lessons?limit=0")).status).toBe(422);

    expect((await http(`/assistants/refine/lessons/${id}`, { method: "DELETE" })).status).toBe(200);
    expect((await http(`/assistants/refine/lessons/${id}`)).status).toBe(404);
    expect((await http(`/assistants/refine/lessons/${id}`, { method: "DELETE" })).status).toBe(404);
  });
});

describe("run feedback", () => {
  it("stores ratings with the run and returns them with the human decisions and verdicts", async () => {
    const { thread_id, run_id } = await refinedRun();
    const path = `/threads/${thread_id}/runs/${run_id}/feedback`;
    const rated = await http(path, {
      method: "POST",
      json: { score: 0.9, comment: "right answer" },
    });
    expect(rated.status).toBe(201);
    expect(rated.body).toMatchObject({
      run_id,
      key: "user_score",
      score: 0.9,
      comment: "right answer",
    });
    const got = await http(path);
    expect(got.body.ratings).toHaveLength(1);
    expect((got.body.verdicts as { pass: boolean }[]).map((v) => v.pass)).toEqual([false, true]);

    const bad = await http(path, { method: "POST", json: { score: 3 } });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ field: "score" });
    const empty = await http(path, { method: "POST", json: {} });
    expect(empty.status).toBe(422);
    const unknownRun = await http(
      `/threads/${thread_id}/runs/00000000-0000-4000-8000-000000000000/feedback`,
      {
        method: "POST",
        json: { score: 1 },
      },
    );
    expect(unknownRun.status).toBe(404);
    expect((await http(path)).body.ratings).toHaveLength(1);
  });

  it("accepts only the run's feedback_keys when it was created with them", async () => {
    const { thread_id, run_id } = await refinedRun("What is 2 + 2?", {
      feedbackKeys: ["correctness"],
    });
    const path = `/threads/${thread_id}/runs/${run_id}/feedback`;
    const wrong = await http(path, { method: "POST", json: { key: "style", score: 1 } });
    expect(wrong.status).toBe(422);
    expect(wrong.body).toMatchObject({ field: "key" });
    expect(
      (await http(path, { method: "POST", json: { key: "correctness", score: 1 } })).status,
    ).toBe(201);
  });
});

describe("export", () => {
  it("streams SFT, DPO and PASR-trace JSONL that match the stored runs", async () => {
    const { run_id } = await refinedRun();
    // The executor records the outcome after the clients have the run's result.
    const { sft, lines } = await eventually(async () => {
      const sft = await http("/export?format=sft&graph_id=refine");
      const lines = sft.text
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      return lines.some((l) => l.metadata.run_id === run_id) ? { sft, lines } : undefined;
    }, "the run's outcome in the export");
    expect(sft.status).toBe(200);
    expect(sft.headers.get("content-type")).toMatch(/application\/x-ndjson/);
    const mine = lines.find((l) => l.metadata.run_id === run_id);
    expect(mine.messages).toEqual([
      { role: "user", content: "What is 2 + 2?" },
      { role: "assistant", content: "2 + 2 = 4\nAnswer: 4" },
    ]);
    const state = await s.client.threads.getState(mine.metadata.thread_id);
    expect((state.values as { answer: string }).answer).toBe(mine.messages[1].content);

    const dpo = (await http("/export?format=dpo")).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const pair = dpo.find((l) => l.metadata.run_id === run_id);
    expect(pair.chosen[0].content).toBe("2 + 2 = 4\nAnswer: 4");
    expect(pair.rejected[0].content).toBe("2 + 2 = 5\nAnswer: 5");
    expect(pair.reason).toContain("The sum of 2 and 2 is 4, not 5.");

    const pasr = (await http("/export?format=pasr")).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const trace = pasr.find((l) => l.metadata.run_id === run_id).messages[2].content as string;
    expect(trace).toMatch(
      /^<think>\n2 \+ 2 = 5\nAnswer: 5\n<refine>\n[\s\S]*<\/refine>\n<\/think>\n<answer>\n2 \+ 2 = 4\nAnswer: 4\n<\/answer>$/,
    );

    const none = await http("/export?format=sft&until=2000-01-01");
    expect(none.status).toBe(200);
    expect(none.text).toBe("");
  });

  it("rejects invalid filters with a 4xx naming the field", async () => {
    const cases: [string, string][] = [
      ["/export", "query.format"],
      ["/export?format=xml", "query.format"],
      ["/export?format=sft&since=yesterday", "query.since"],
      ["/export?format=sft&since=2026-12-01&until=2026-11-01", "query.since"],
      ["/export?format=sft&verdict=maybe", "query.verdict"],
      ["/export?format=sft&human_approved_only=yes", "query.human_approved_only"],
    ];
    for (const [path, field] of cases) {
      const res = await http(path);
      expect(res.status, path).toBe(422);
      expect(res.body, path).toMatchObject({ field });
    }
  });
});

describe("lessons persistence", () => {
  it("keeps lessons in the database across a server restart", async () => {
    const env = databaseEnv(s.dbPath);
    const created = await http("/assistants/refine/lessons", {
      method: "POST",
      json: { text: "Round money to two decimals." },
    });
    const id = created.body.id as string;
    const second = await startServer({
      env,
      configPath: FIXTURE_CONFIG,
      port: 0,
      host: "127.0.0.1",
      log: silentLogger,
      provider: scriptedProvider(model),
      concurrency: 2,
      pollMs: 200,
    });
    try {
      const res = await fetch(`${second.url}/assistants/refine/lessons/${id}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ text: "Round money to two decimals." });
    } finally {
      await second.close(1000);
    }
  });
});

describe("lessons in declarative graphs", () => {
  it("a declarative graph's generate node gets lessons learned from its earlier runs", async () => {
    const good = '{"name": "Ada", "age": 36, "email": "ada@example.com"}';
    const extractor = new ScriptedChatModel({
      generate: (messages) =>
        String(messages.at(-1)?.content).includes("Lessons from earlier")
          ? good
          : '{"name": "Ada", "age": 36}',
      revise: () => good,
    });
    const d = await startTestServer({ provider: scriptedProvider(extractor) });
    try {
      const spec = {
        id: "extract-person",
        start: "extract",
        nodes: {
          extract: { kind: "generate" },
          check: {
            kind: "verify",
            verifiers: [
              {
                kind: "json_schema",
                id: "record",
                schema: { type: "object", required: ["name", "age", "email"] },
              },
            ],
          },
          repair: { kind: "revise" },
        },
        edges: [
          { from: "extract", to: "check" },
          { from: "check", when: [{ if: "verdicts.allHardPass", to: "END" }], else: "repair" },
          { from: "repair", to: "check" },
        ],
      };
      const created = await fetch(`${d.url}/graphs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(spec),
      });
      expect(created.status).toBe(201);
      const run = async (task: string) => {
        const thread = await d.client.threads.create();
        await d.client.runs.wait(thread.thread_id, "extract-person", { input: { task } });
        return (await d.client.threads.getState(thread.thread_id)).values as {
          drafts: unknown[];
          lessons: { text: string }[];
        };
      };
      const first = await run(
        "Extract the person's name, age and email from: Ada, 36, ada@example.com",
      );
      expect(first.drafts).toHaveLength(2);
      const second = await run(
        "Extract the person's name, age and email from: Ada, 36, mail ada@example.com",
      );
      expect(second.lessons.map((l) => l.text)).toEqual([
        expect.stringMatching(/^Check "record": .*email/),
      ]);
      expect(second.drafts).toHaveLength(1);
    } finally {
      await d.close();
    }
  });
});
