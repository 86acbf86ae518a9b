// StreamHub retention: finished runs keep their replay log for a while, bounded by time, by the
// number of finished runs and by the number of events they hold, so memory does not grow with
// the number of finished runs.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RemoteEntry } from "../../server/signals/redis-events.ts";
import { StreamHub, type RunEvent } from "../../server/stream-hub.ts";

function finish(hub: StreamHub, runId: string, events: number, attempt = 1): void {
  hub.open(runId, attempt);
  for (let i = 1; i <= events; i++) hub.publish(runId, "values", { i });
  hub.close(runId, { status: "success", values: { runId } });
}

async function read(hub: StreamHub, runId: string, lastEventId?: string): Promise<string[]> {
  const out: RunEvent[] = [];
  for await (const e of hub.subscribe(runId, lastEventId)) out.push(e);
  return out.map((e) => e.id);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("StreamHub retention of finished runs", () => {
  it("keeps at most maxFinishedRuns finished runs, dropping the one that ended first", async () => {
    const hub = new StreamHub({ maxFinishedRuns: 2 });
    finish(hub, "a", 2);
    finish(hub, "b", 2);
    finish(hub, "c", 2);
    expect(hub.ended("a")).toBeUndefined();
    expect(hub.ended("b")?.values).toEqual({ runId: "b" });
    expect(hub.ended("c")?.values).toEqual({ runId: "c" });
    expect(await read(hub, "b", "1-1")).toEqual(["1-2"]);
    expect(hub.stats()).toMatchObject({ runs: 2, finishedRuns: 2, finishedEvents: 4 });
  });

  it("keeps at most maxFinishedEvents events across finished runs", () => {
    const hub = new StreamHub({ maxFinishedEvents: 5 });
    finish(hub, "a", 3);
    finish(hub, "b", 2);
    expect(hub.stats().finishedEvents).toBe(5);
    finish(hub, "c", 1);
    expect(hub.ended("a")).toBeUndefined();
    expect(hub.stats()).toMatchObject({ finishedRuns: 2, finishedEvents: 3 });
  });

  it("never drops a run that is still running, however many runs finish", async () => {
    const hub = new StreamHub({ maxFinishedRuns: 1, maxFinishedEvents: 1 });
    hub.open("live", 1);
    hub.publish("live", "values", { i: 1 });
    for (let i = 0; i < 10; i++) finish(hub, `done-${i}`, 3);
    hub.publish("live", "values", { i: 2 });
    const replay = read(hub, "live");
    hub.close("live", { status: "success" });
    expect(await replay).toEqual(["1-1", "1-2"]);
  });

  it("drops finished runs after retentionMs, even when no other run ends", async () => {
    vi.useFakeTimers();
    const hub = new StreamHub({ retentionMs: 1_000 });
    finish(hub, "a", 2);
    vi.advanceTimersByTime(500);
    finish(hub, "b", 2);
    expect(hub.ended("a")).toBeDefined();
    vi.advanceTimersByTime(1_000);
    expect(hub.ended("a")).toBeUndefined();
    expect(hub.ended("b")).toBeDefined();
    vi.advanceTimersByTime(1_000);
    expect(hub.stats()).toEqual({ runs: 0, events: 0, finishedRuns: 0, finishedEvents: 0 });
  });

  it("a run re-queued after a crash starts a new attempt that its old end does not evict", async () => {
    const hub = new StreamHub({ maxFinishedRuns: 1 });
    finish(hub, "run", 2, 1);
    hub.open("run", 2);
    expect(hub.stats()).toMatchObject({ finishedRuns: 0, finishedEvents: 0 });
    hub.publish("run", "values", { i: 1 });
    finish(hub, "other", 1);
    hub.close("run", { status: "success" });
    expect(await read(hub, "run", "1-2")).toEqual(["2-1"]);
    expect(hub.ended("other")).toBeUndefined();
  });

  it("a subscriber replaying a run keeps its events when the run is dropped meanwhile", async () => {
    const hub = new StreamHub({ maxFinishedRuns: 1 });
    finish(hub, "a", 3);
    const it = hub.subscribe("a", undefined)[Symbol.asyncIterator]();
    expect((await it.next()).value?.id).toBe("1-1");
    finish(hub, "b", 1);
    expect(hub.ended("a")).toBeUndefined();
    expect((await it.next()).value?.id).toBe("1-2");
    expect((await it.next()).value?.id).toBe("1-3");
    expect((await it.next()).done).toBe(true);
  });
});

/** A remote (the Redis side) in memory: entries per run, followers woken as entries come. */
function memoryRemote() {
  const logs = new Map<string, RemoteEntry[]>();
  const wakes = new Set<() => void>();
  return {
    append(runId: string, entry: RemoteEntry) {
      logs.set(runId, [...(logs.get(runId) ?? []), entry]);
      for (const w of wakes) w();
    },
    async *follow(runId: string, signal?: AbortSignal): AsyncGenerator<RemoteEntry> {
      let at = 0;
      while (!signal?.aborted) {
        const log = logs.get(runId) ?? [];
        if (at < log.length) {
          yield log[at++]!;
          continue;
        }
        // As Redis' follower does after a quiet second.
        yield { kind: "idle" };
        await new Promise<void>((r) => {
          const w = () => {
            wakes.delete(w);
            r();
          };
          wakes.add(w);
          setTimeout(w, 20);
        });
      }
    },
    async close() {},
  };
}

describe("StreamHub.awaitResumption: a run paused here (the database went away)", () => {
  it("keeps its waiters, and ends them when another process finishes the run", async () => {
    const remote = memoryRemote();
    // What the database says of a run's end (nothing yet).
    const db: { end?: { status: "success"; values: unknown } } = {};
    const hub = new StreamHub({ remote, settled: async () => db.end });
    hub.open("r", 1);
    hub.publish("r", "values", { step: 1 });
    const waited = hub.waitForEnd("r");
    const streamed = read(hub, "r");
    hub.awaitResumption("r");
    // Nothing ends it yet: another process has not finished it.
    await new Promise((r) => setTimeout(r, 60));
    expect(hub.ended("r")).toBeUndefined();
    // Another process finished it: its end reaches Redis.
    remote.append("r", { kind: "end", end: { status: "success", values: { done: true } } });
    await expect(waited).resolves.toEqual({ status: "success", values: { done: true } });
    expect(await streamed).toEqual(["1-1"]);
    // Or only the database knows (its events never reached Redis): asked when Redis is quiet.
    hub.open("s", 1);
    const waitedS = hub.waitForEnd("s");
    hub.awaitResumption("s");
    db.end = { status: "success", values: { from: "storage" } };
    await expect(waitedS).resolves.toEqual({ status: "success", values: { from: "storage" } });
  });

  it("lets a new attempt here end its waiters, and then stops following", async () => {
    const remote = memoryRemote();
    const hub = new StreamHub({ remote, settled: async () => undefined });
    hub.open("r", 1);
    const waited = hub.waitForEnd("r");
    hub.awaitResumption("r");
    hub.open("r", 2);
    hub.publish("r", "values", { step: 1 });
    hub.close("r", { status: "success", values: { attempt: 2 } });
    await expect(waited).resolves.toEqual({ status: "success", values: { attempt: 2 } });
    // A later end from elsewhere does not end it again.
    remote.append("r", { kind: "end", end: { status: "error" } });
    await new Promise((r) => setTimeout(r, 60));
    expect(hub.ended("r")).toEqual({ status: "success", values: { attempt: 2 } });
  });
});
