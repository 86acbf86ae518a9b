// In-process fan-out of run events to SSE clients, with a bounded replay log per run so a
// client that reconnects with Last-Event-ID misses nothing. Event ids are "<attempt>-<n>": a
// run re-queued after a crash starts a new attempt, and its log is replayed from the start.
// Finished runs keep their log for a while, bounded by time and by how many runs and events are
// kept, so memory does not grow with throughput; a run dropped from here is served from storage.
// With `remote` (Redis Streams, server/signals/redis-events.ts) every run's log is mirrored there
// too, and a run this process does not execute is followed from there: clients of any process
// see the events of a run executing in another.
import type { RemoteRunEvents } from "./signals/redis-events.ts";

export interface RunEvent {
  id: string;
  event: string;
  data: unknown;
}

export interface RunEnd {
  status: "success" | "error" | "interrupted" | "timeout";
  /** Final state values (what /wait and /join answer), or undefined when the run was deleted. */
  values?: unknown;
  error?: { error: string; message: string };
}

interface Channel {
  attempt: number;
  events: RunEvent[];
  /** Events published in this attempt; ids keep counting after old events are dropped. */
  seq: number;
  listeners: Set<(e: RunEvent | null) => void>;
  closed: boolean;
  end?: RunEnd;
  endWaiters: ((end: RunEnd) => void)[];
  /** When the run ended (ms since epoch); set while the channel is in the finished queue. */
  endedAt?: number;
}

export interface StreamHubOptions {
  /** How long a finished run's events stay available for join-stream replay. */
  retentionMs?: number;
  /** Replay log cap per run; older events are dropped first (clients then rejoin from the latest). */
  maxEventsPerRun?: number;
  /** Finished runs whose logs are kept; the run that ended first is dropped first. */
  maxFinishedRuns?: number;
  /** Events kept across all finished runs' logs; the run that ended first is dropped first. */
  maxFinishedEvents?: number;
  /** Mirrors runs' logs for other processes and follows theirs (Redis Streams). */
  remote?: RemoteRunEvents;
  /**
   * With `remote`: how a run followed from Redis ended according to the database (undefined:
   * not ended), asked when Redis is quiet, so a run whose events never reach Redis still ends.
   */
  settled?: (runId: string) => Promise<RunEnd | undefined>;
}

export class StreamHub {
  private readonly channels = new Map<string, Channel>();
  /** Finished channels in the order they ended (Map order), for time and size eviction. */
  private readonly finished = new Map<string, Channel>();
  private finishedEvents = 0;
  private sweeper?: NodeJS.Timeout;
  private readonly retentionMs: number;
  private readonly maxEvents: number;
  private readonly maxFinishedRuns: number;
  private readonly maxFinishedEvents: number;
  private readonly remote?: RemoteRunEvents;
  private readonly settled?: (runId: string) => Promise<RunEnd | undefined>;

  constructor(options: StreamHubOptions = {}) {
    this.remote = options.remote;
    this.settled = options.settled;
    this.retentionMs = options.retentionMs ?? 60_000;
    this.maxEvents = options.maxEventsPerRun ?? 2_000;
    this.maxFinishedRuns = options.maxFinishedRuns ?? 500;
    this.maxFinishedEvents = options.maxFinishedEvents ?? 10_000;
  }

  /** Starts (or restarts, on a new attempt) the log of a run. */
  open(runId: string, attempt: number): void {
    const existing = this.channels.get(runId);
    if (existing) this.unfinish(runId, existing);
    const channel: Channel = {
      attempt,
      events: [],
      seq: 0,
      listeners: existing?.listeners ?? new Set(),
      closed: false,
      endWaiters: existing?.endWaiters ?? [],
    };
    this.channels.set(runId, channel);
    this.remote?.append(runId, { kind: "open", attempt });
  }

  publish(runId: string, event: string, data: unknown): void {
    const channel = this.channels.get(runId);
    if (!channel || channel.closed) return;
    channel.seq += 1;
    const e: RunEvent = { id: `${channel.attempt}-${channel.seq}`, event, data };
    channel.events.push(e);
    if (channel.events.length > this.maxEvents)
      channel.events.splice(0, channel.events.length - this.maxEvents);
    for (const listener of channel.listeners) listener(e);
    this.remote?.append(runId, { kind: "event", event: e });
  }

  /** Marks the run finished: listeners get `null`, waiters get the end record. */
  close(runId: string, end: RunEnd): void {
    const channel = this.channels.get(runId) ?? this.placeholder(runId);
    if (!channel.closed) this.remote?.append(runId, { kind: "end", end });
    channel.closed = true;
    channel.end = end;
    for (const listener of channel.listeners) listener(null);
    channel.listeners.clear();
    for (const waiter of channel.endWaiters.splice(0)) waiter(end);
    this.unfinish(runId, channel);
    channel.endedAt = Date.now();
    this.finished.set(runId, channel);
    this.finishedEvents += channel.events.length;
    this.evict(channel.endedAt);
    if (!this.sweeper && this.finished.size > 0) {
      this.sweeper = setInterval(() => this.evict(Date.now()), Math.min(this.retentionMs, 5_000));
      this.sweeper.unref();
    }
  }

  /** Resolves when the run ends (in this process, or with `remote`, in any). */
  waitForEnd(runId: string): Promise<RunEnd> {
    if (this.remote && !this.known(runId)) return this.remoteEnd(runId);
    const channel = this.channels.get(runId) ?? this.placeholder(runId);
    if (channel.end) return Promise.resolve(channel.end);
    return new Promise((resolve) => channel.endWaiters.push(resolve));
  }

  /**
   * The run's execution here stopped without an end (the database did not answer) and it will be
   * taken up again, here or by another process. Waiters and streams here stay: a new attempt here
   * publishes to them and ends them. With `remote`, the run's end is also followed from there, so
   * they end too when another process finishes it.
   */
  awaitResumption(runId: string): void {
    if (!this.remote) return;
    const open = () => this.channels.get(runId)?.closed === false;
    void this.followEnd(runId, () => !open())
      .then((end) => {
        if (end && open()) this.close(runId, end);
      })
      .catch(() => undefined);
  }

  ended(runId: string): RunEnd | undefined {
    return this.channels.get(runId)?.end;
  }

  /**
   * Replays the log after `lastEventId`, then follows live events until the run ends or
   * `signal` aborts. Yields nothing for a run this process never saw and that has ended.
   */
  async *subscribe(
    runId: string,
    lastEventId: string | undefined,
    signal?: AbortSignal,
  ): AsyncGenerator<RunEvent> {
    if (this.remote && !this.known(runId)) {
      yield* this.remoteSubscribe(runId, lastEventId, signal);
      return;
    }
    const channel = this.channels.get(runId) ?? this.placeholder(runId);
    const queue: (RunEvent | null)[] = [];
    let wake: (() => void) | undefined;
    const listener = (e: RunEvent | null) => {
      queue.push(e);
      wake?.();
    };
    const replay = this.replayFrom(channel, lastEventId);
    if (!channel.closed) channel.listeners.add(listener);
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      for (const e of replay) yield e;
      if (channel.closed) return;
      while (!signal?.aborted) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        while (queue.length) {
          const e = queue.shift();
          if (e === null || e === undefined) return;
          yield e;
        }
      }
    } finally {
      channel.listeners.delete(listener);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** True when this process executes (or executed) the run, so its log is here. */
  private known(runId: string): boolean {
    const channel = this.channels.get(runId);
    return channel !== undefined && (channel.attempt > 0 || channel.closed);
  }

  private async remoteEnd(runId: string): Promise<RunEnd> {
    return (
      (await this.followEnd(runId)) ?? (await this.settled?.(runId)) ?? { status: "interrupted" }
    );
  }

  /**
   * The run's end as Redis tells it, or the database when Redis is quiet (`settled`); undefined
   * when the follow stops first (`gaveUp` true at an entry, or Redis' follow ending).
   */
  private async followEnd(runId: string, gaveUp = () => false): Promise<RunEnd | undefined> {
    const stop = new AbortController();
    try {
      for await (const entry of this.remote!.follow(runId, stop.signal)) {
        if (gaveUp()) return undefined;
        if (entry.kind === "end") return entry.end;
        const end = entry.kind === "idle" ? await this.settled?.(runId) : undefined;
        if (end) return end;
      }
      return undefined;
    } finally {
      stop.abort();
    }
  }

  /** A run executing in another process: its log from Redis, with the Last-Event-ID rule. */
  private async *remoteSubscribe(
    runId: string,
    lastEventId: string | undefined,
    signal?: AbortSignal,
  ): AsyncGenerator<RunEvent> {
    const m = lastEventId ? /^(\d+)-(\d+)$/.exec(lastEventId) : null;
    const after = m ? { attempt: Number(m[1]), n: Number(m[2]) } : undefined;
    for await (const entry of this.remote!.follow(runId, signal)) {
      if (entry.kind === "end") return;
      if (entry.kind === "idle" && (await this.settled?.(runId))) return;
      if (entry.kind !== "event") continue;
      const [a, n] = entry.event.id.split("-").map(Number) as [number, number];
      if (after && (a < after.attempt || (a === after.attempt && n <= after.n))) continue;
      yield entry.event;
    }
  }

  /** Runs and events held: all runs, and the finished ones kept for replay. */
  stats(): { runs: number; events: number; finishedRuns: number; finishedEvents: number } {
    let events = 0;
    for (const c of this.channels.values()) events += c.events.length;
    return {
      runs: this.channels.size,
      events,
      finishedRuns: this.finished.size,
      finishedEvents: this.finishedEvents,
    };
  }

  /** Drops finished runs past their retention, then the oldest ones while over a cap. */
  private evict(now: number): void {
    for (const [runId, channel] of this.finished) {
      const expired = (channel.endedAt ?? 0) + this.retentionMs <= now;
      const over =
        this.finished.size > this.maxFinishedRuns || this.finishedEvents > this.maxFinishedEvents;
      if (!expired && !over) break;
      this.unfinish(runId, channel);
      if (this.channels.get(runId) === channel) this.channels.delete(runId);
    }
    if (this.finished.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private unfinish(runId: string, channel: Channel): void {
    if (this.finished.get(runId) !== channel) return;
    this.finished.delete(runId);
    this.finishedEvents -= channel.events.length;
    channel.endedAt = undefined;
  }

  private replayFrom(channel: Channel, lastEventId: string | undefined): RunEvent[] {
    if (lastEventId === undefined) return channel.events.slice();
    const m = /^(\d+)-(\d+)$/.exec(lastEventId);
    if (!m) return channel.events.slice();
    const attempt = Number(m[1]);
    const n = Number(m[2]);
    if (attempt !== channel.attempt) return attempt < channel.attempt ? channel.events.slice() : [];
    return channel.events.filter((e) => Number(e.id.split("-")[1]) > n);
  }

  private placeholder(runId: string): Channel {
    const channel: Channel = {
      attempt: 0,
      events: [],
      seq: 0,
      listeners: new Set(),
      closed: false,
      endWaiters: [],
    };
    this.channels.set(runId, channel);
    return channel;
  }
}
