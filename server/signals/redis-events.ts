// Run events across processes through Redis Streams: the process executing a run appends its
// events (and its end) to `<prefix>:run:<run_id>`, bounded to the hub's per-run cap (MAXLEN ~)
// and expiring after the hub's retention; `stream`, `join`, `joinStream` and `wait` clients on
// any process read them there, with Last-Event-ID replay. Each entry is one JSON field `e`.
// Redis down: appends are dropped (with the signals' warning) and readers on other processes see
// the run's end from the database instead when they ask again.
import { Redis } from "ioredis";
import type { RunEnd, RunEvent } from "../stream-hub.ts";

export type RemoteEntry =
  /** Nothing came for a while: the reader may check the database. */
  | { kind: "idle" }
  | { kind: "open"; attempt: number }
  | { kind: "event"; event: RunEvent }
  | { kind: "end"; end: RunEnd };

/** Where a StreamHub mirrors its runs' events for other processes (server/stream-hub.ts). */
export interface RemoteRunEvents {
  append(runId: string, entry: RemoteEntry): void;
  /** Every entry of the run, from its current attempt's start, then live until `signal` aborts. */
  follow(runId: string, signal?: AbortSignal): AsyncGenerator<RemoteEntry>;
  close(): Promise<void>;
}

export interface RedisRunEventsOptions {
  url: string;
  prefix: string;
  /** Entries kept per run (the hub's per-run cap). */
  maxLen: number;
  /** Seconds a run's entries stay after its last one. */
  ttlSeconds: number;
}

/** How long one blocking read waits; a follower that got nothing for this long is told `idle`. */
const BLOCK_MS = 1000;
/** Entries taken per stream per read. */
const READ_COUNT = 256;
/** A follower with this many entries not yet taken is left out of reads until it catches up. */
const QUEUE_MAX = 512;

type Entry = { id: string; entry: RemoteEntry | undefined };

/** One follower of one run: what the shared read loop hands it, until it is taken. */
interface Follower {
  key: string;
  /** The last id queued for it: the next read asks for entries after this one. */
  last: string;
  queue: Entry[];
  wake?: () => void;
}

/** Stream ids ("<ms>-<seq>") in order. */
function idAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

export class RedisRunEvents implements RemoteRunEvents {
  private readonly writer: Redis;
  /**
   * The one blocking connection of this process: a single XREAD loop serves every followed run
   * (runs.wait, join, stream clients of runs executing elsewhere) instead of one connection each.
   */
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private readonly followers = new Set<Follower>();
  private looping = false;
  /** The loop's current read, while it blocks (so a new follower can cut it short). */
  private blockedRead = 0;
  private reads = 0;
  private closed = false;

  constructor(private readonly options: RedisRunEventsOptions) {
    this.writer = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(times * 200, 2000),
    });
    this.writer.on("error", () => undefined); // RedisSignals warns about outages
  }

  private key(runId: string): string {
    return `${this.options.prefix}:run:${runId}`;
  }

  append(runId: string, entry: RemoteEntry): void {
    if (this.writer.status !== "ready") return;
    const key = this.key(runId);
    // One connection, commands in order: a run's entries keep the order they were published in.
    this.writer
      .multi()
      .xadd(key, "MAXLEN", "~", this.options.maxLen, "*", "e", JSON.stringify(entry))
      .expire(key, this.options.ttlSeconds)
      .exec()
      .catch(() => undefined);
  }

  async *follow(runId: string, signal?: AbortSignal): AsyncGenerator<RemoteEntry> {
    const key = this.key(runId);
    let follower: Follower | undefined;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => follower?.wake?.();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // The backlog first, on the writer's connection (a plain read, nothing blocks).
      while (!follower) {
        if (signal?.aborted || this.closed) return;
        let backlog: Entry[];
        try {
          if (this.writer.status !== "ready") throw new Error("redis not ready");
          backlog = (await this.writer.xrange(key, "-", "+")).map(([id, fields]) => ({
            id,
            entry: parse(fields),
          }));
        } catch {
          if (signal?.aborted) return;
          // Redis is down: the reader may ask the database meanwhile; reading resumes after.
          yield { kind: "idle" };
          await new Promise((resolve) => setTimeout(resolve, BLOCK_MS / 2));
          continue;
        }
        // Replay from the current attempt's start, as the in-process hub keeps only that one.
        let from = 0;
        backlog.forEach((e, i) => {
          if (e.entry?.kind === "open") from = i;
        });
        follower = { key, last: backlog.at(-1)?.id ?? "0-0", queue: backlog.slice(from) };
      }
      this.followers.add(follower);
      this.kick();
      while (!signal?.aborted && !this.closed) {
        if (follower.queue.length === 0) {
          // Wait for entries, or tell the caller nothing came for BLOCK_MS.
          const got = await new Promise<boolean>((resolve) => {
            follower!.wake = () => resolve(true);
            timer = setTimeout(() => resolve(false), BLOCK_MS);
          });
          clearTimeout(timer);
          follower.wake = undefined;
          if (!got && follower.queue.length === 0) {
            yield { kind: "idle" };
            continue;
          }
        }
        const wasFull = follower.queue.length >= QUEUE_MAX;
        const batch = follower.queue.splice(0);
        if (wasFull) this.kick();
        for (const { entry } of batch) {
          if (!entry) continue;
          yield entry;
          if (entry.kind === "end") return;
        }
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (follower) this.followers.delete(follower);
    }
  }

  /** Starts the read loop, or cuts its blocking read short so the next one covers a change. */
  private kick(): void {
    if (!this.looping) {
      this.looping = true;
      void this.loop().finally(() => {
        this.looping = false;
        // Followed again meanwhile (a follower added as the loop ended, or one that caught up).
        const room = [...this.followers].some((f) => f.queue.length < QUEUE_MAX);
        if (room && !this.closed) this.kick();
      });
      return;
    }
    const read = this.blockedRead;
    if (read === 0 || this.readerId === undefined || this.writer.status !== "ready") return;
    // CLIENT UNBLOCK answers 0 when the read has not reached Redis yet: try again shortly (a few
    // times; at worst the new follower waits for the read's BLOCK_MS).
    let tries = 0;
    const unblock = () => {
      if (this.blockedRead !== read || this.readerId === undefined || ++tries > 20) return;
      this.writer
        .call("CLIENT", "UNBLOCK", String(this.readerId))
        .then((n) => {
          if (Number(n) === 0) setTimeout(unblock, 2);
        })
        .catch(() => undefined);
    };
    unblock();
  }

  private openReader(): Redis {
    if (this.reader) return this.reader;
    const reader = this.writer.duplicate({ enableOfflineQueue: true });
    reader.on("error", () => undefined);
    reader.on("ready", () => {
      this.readerId = undefined;
      reader
        .call("CLIENT", "ID")
        .then((id) => {
          if (this.reader === reader) this.readerId = Number(id);
        })
        .catch(() => undefined);
    });
    this.reader = reader;
    return reader;
  }

  /** One XREAD over every followed run at a time, while anyone follows. */
  private async loop(): Promise<void> {
    const reader = this.openReader();
    while (this.followers.size > 0 && !this.closed) {
      // Per stream, read after the earliest id any of its followers still needs.
      const from = new Map<string, string>();
      for (const f of this.followers) {
        if (f.queue.length >= QUEUE_MAX) continue;
        const at = from.get(f.key);
        if (at === undefined || idAfter(at, f.last)) from.set(f.key, f.last);
      }
      if (from.size === 0) return; // every follower is full; taking entries kicks the loop again
      const read = ++this.reads;
      let got: [string, [string, string[]][]][] | null;
      try {
        this.blockedRead = read;
        got = (await reader.xread(
          "COUNT",
          READ_COUNT,
          "BLOCK",
          BLOCK_MS,
          "STREAMS",
          ...from.keys(),
          ...from.values(),
        )) as [string, [string, string[]][]][] | null;
      } catch {
        if (this.closed) return;
        // Redis is down: followers are told idle by their own timers; try again shortly.
        await new Promise((resolve) => setTimeout(resolve, BLOCK_MS / 2));
        continue;
      } finally {
        this.blockedRead = 0;
      }
      for (const [key, items] of got ?? []) {
        const entries = items.map(([id, fields]) => ({ id, entry: parse(fields) }));
        for (const f of this.followers) {
          if (f.key !== key) continue;
          const fresh = entries.filter((e) => idAfter(e.id, f.last));
          if (fresh.length === 0) continue;
          f.queue.push(...fresh);
          f.last = fresh.at(-1)!.id;
          f.wake?.();
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const f of this.followers) f.wake?.();
    this.reader?.disconnect();
    this.writer.disconnect();
  }
}

function parse(fields: string[]): RemoteEntry | undefined {
  const i = fields.indexOf("e");
  if (i < 0 || fields[i + 1] === undefined) return undefined;
  try {
    return JSON.parse(fields[i + 1]!) as RemoteEntry;
  } catch {
    return undefined;
  }
}
