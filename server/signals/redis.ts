// Signals across processes through Redis pub/sub (REFINERY_REDIS_URL): channels
// `<prefix>:wake` and `<prefix>:cancel`, so several deployments can share one Redis under their
// own REFINERY_REDIS_PREFIX. Redis unreachable (at start or later) is not fatal: a warning is
// logged once per outage, signals are dropped meanwhile (workers find new runs by polling), and
// ioredis reconnects and resubscribes on its own.
import { Redis } from "ioredis";
import type { Logger } from "../log.ts";
import { BroadcastSignals } from "./broadcast.ts";
import type { RunSignals } from "./types.ts";

export interface RedisSignalsOptions {
  url: string;
  prefix: string;
  log: Logger;
}

/** host:port of a Redis URL, never its credentials. */
export function describeRedisUrl(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || "6379"}`;
}

export class RedisSignals extends BroadcastSignals implements RunSignals {
  readonly kind = "redis" as const;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private down = false;

  constructor(private readonly options: RedisSignalsOptions) {
    super(`${options.prefix}:wake`, `${options.prefix}:cancel`);
    const common = {
      // Fail fast while Redis is down (the signal is dropped) instead of queueing commands.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(times * 200, 2000),
    };
    this.pub = new Redis(options.url, { ...common, lazyConnect: true });
    // The subscriber queues its SUBSCRIBE until connected (and resubscribes after a reconnect).
    this.sub = new Redis(options.url, { ...common, enableOfflineQueue: true, lazyConnect: true });
    for (const client of [this.pub, this.sub]) {
      client.on("error", (err: Error) => this.outage(err));
      client.on("ready", () => this.recovered());
    }
    this.sub.on("message", (channel: string, message: string) => this.receive(channel, message));
  }

  /** Connects both clients; resolves either way (unreachable: warned, signals dropped until up). */
  async start(): Promise<void> {
    await Promise.all([
      this.pub.connect().catch((err: Error) => this.outage(err)),
      this.sub.connect().catch((err: Error) => this.outage(err)),
    ]);
    // Queued until connected when Redis is down now; ioredis resubscribes after reconnects.
    void this.sub
      .subscribe(this.wakeChannel, this.cancelChannel)
      .catch((err: Error) => this.outage(err));
    if (!this.down)
      this.options.log("info", "signalling through Redis", {
        redis: describeRedisUrl(this.options.url),
        prefix: this.options.prefix,
      });
  }

  /** Rejects when Redis does not answer a PING within a second (GET /ok). */
  async ping(): Promise<void> {
    if (this.pub.status !== "ready") throw new Error(`Redis is ${this.pub.status}`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.pub.ping(),
      new Promise((_r, reject) => {
        timer = setTimeout(() => reject(new Error("Redis did not answer PING within 1 s")), 1000);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  async close(): Promise<void> {
    this.pub.disconnect();
    this.sub.disconnect();
  }

  protected send(channel: string, message: string): void {
    if (this.pub.status !== "ready") return;
    this.pub.publish(channel, message).catch((err: Error) => this.outage(err));
  }

  private outage(err: Error): void {
    if (this.down) return;
    this.down = true;
    this.options.log(
      "warn",
      "Redis unreachable: new runs are found by polling (every second) and cancels reach only this process until it is back",
      { redis: describeRedisUrl(this.options.url), error: err.message },
    );
  }

  private recovered(): void {
    if (!this.down || this.pub.status !== "ready" || this.sub.status !== "ready") return;
    this.down = false;
    this.options.log("info", "Redis reachable again: signalling through it", {
      redis: describeRedisUrl(this.options.url),
    });
  }
}
