// Finished runs leave the stream hub once more than REFINERY_STREAM_RETAIN_RUNS others have
// finished after them; join-stream and join then answer from storage (metadata and the final
// values, as after a restart), while runs still in the hub replay after Last-Event-ID.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ env: { REFINERY_STREAM_RETAIN_RUNS: "1" } });
});
afterAll(async () => s?.close());

interface Event {
  event: string;
  data: unknown;
  id?: string;
}

async function collect(stream: AsyncIterable<Event>): Promise<Event[]> {
  const out: Event[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

async function finishedRun(topic: string) {
  const thread = await s.client.threads.create({ threadId: randomUUID() });
  const run = await s.client.runs.create(thread.thread_id, "slow", {
    input: { topic, delayMs: 0 },
    streamMode: ["values", "updates"],
  });
  await s.client.runs.join(thread.thread_id, run.run_id);
  return { threadId: thread.thread_id, runId: run.run_id };
}

describe("stream retention of finished runs", () => {
  it("a run dropped from the hub streams its final values from storage; a kept one replays", async () => {
    const old = await finishedRun("old");
    const kept = await finishedRun("kept");
    const oldFinal = (await s.client.threads.getState(old.threadId)).values;

    for (const lastEventId of [undefined, "1-2"]) {
      const events = await collect(
        s.client.runs.joinStream(old.threadId, old.runId, lastEventId ? { lastEventId } : {}),
      );
      expect(events.map((e) => e.event)).toEqual(["metadata", "values"]);
      expect(events[0]!.data).toMatchObject({ run_id: old.runId });
      expect(events[1]!.data).toEqual(oldFinal);
    }
    expect(await s.client.runs.join(old.threadId, old.runId)).toEqual(oldFinal);

    // The latest finished run is still in the hub: only the events after Last-Event-ID.
    const all = await collect(s.client.runs.joinStream(kept.threadId, kept.runId));
    expect(all.length).toBeGreaterThan(4);
    const rest = await collect(
      s.client.runs.joinStream(kept.threadId, kept.runId, { lastEventId: "1-2" }),
    );
    expect(rest.map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
  });
});
