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

/** How long one blocking read waits before checking whether its reader left. */
const BLOCK_MS = 1000;

export class RedisRunEvents implements RemoteRunEvents {
  private readonly writer: Redis;

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
    // A blocking read holds its connection: one per reader.
    const reader = this.writer.duplicate({ enableOfflineQueue: true });
    reader.on("error", () => undefined);
    const onAbort = () => reader.disconnect();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // undefined until the backlog is read.
      let last: string | undefined;
      while (!signal?.aborted) {
        let batch: { id: string; entry: RemoteEntry | undefined }[];
        try {
          if (last === undefined) {
            const backlog = (await reader.xrange(key, "-", "+")).map(([id, fields]) => ({
              id,
              entry: parse(fields),
            }));
            last = backlog.at(-1)?.id ?? "0-0";
            // Replay from the current attempt's start, as the in-process hub keeps only that one.
            let from = 0;
            backlog.forEach((e, i) => {
              if (e.entry?.kind === "open") from = i;
            });
            batch = backlog.slice(from);
          } else {
            const got = await reader.xread("BLOCK", BLOCK_MS, "STREAMS", key, last);
            batch = (got?.[0]?.[1] ?? []).map(([id, fields]) => ({ id, entry: parse(fields) }));
            if (!got) yield { kind: "idle" };
          }
        } catch {
          if (signal?.aborted) return;
          // Redis is down: the reader may ask the database meanwhile; reading resumes after.
          yield { kind: "idle" };
          await new Promise((resolve) => setTimeout(resolve, BLOCK_MS / 2));
          continue;
        }
        for (const { id, entry } of batch) {
          last = id;
          if (!entry) continue;
          yield entry;
          if (entry.kind === "end") return;
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      reader.disconnect();
    }
  }

  async close(): Promise<void> {
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
