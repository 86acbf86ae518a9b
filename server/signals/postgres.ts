// Signals across processes through Postgres LISTEN/NOTIFY: the fallback when the processes share
// a Postgres database (REFINERY_DATABASE_URL) but no Redis. Channels are per schema
// (`refinery_wake_<hash>`, `refinery_cancel_<hash>`), so deployments in other schemas of the same
// database do not hear each other. One connection per process listens; notifications go through
// the backend's own pool. A lost listening connection is reopened (with a warning once per
// outage); meanwhile signals are dropped and workers find new runs by polling, as without signals.
import { createHash } from "node:crypto";
import pg from "pg";
import type { Logger } from "../log.ts";
import { BroadcastSignals } from "./broadcast.ts";
import type { RunSignals } from "./types.ts";

export interface PostgresSignalsOptions {
  url: string;
  schema: string;
  log: Logger;
}

export class PostgresSignals extends BroadcastSignals implements RunSignals {
  readonly kind = "postgres" as const;
  private listener?: pg.Client;
  private readonly sender: pg.Pool;
  private down = false;
  private closed = false;
  private retry?: NodeJS.Timeout;

  constructor(private readonly options: PostgresSignalsOptions) {
    const hash = createHash("sha1").update(options.schema).digest("hex").slice(0, 12);
    super(`refinery_wake_${hash}`, `refinery_cancel_${hash}`);
    this.sender = new pg.Pool({ connectionString: options.url, max: 2 });
    this.sender.on("error", () => {});
    this.sender.on("connect", (client) => client.on("error", () => {})); // see pool.ts
  }

  /** Starts listening; resolves either way (unreachable: warned, retried every 2 s). */
  async start(): Promise<void> {
    await this.listen();
    if (!this.down)
      this.options.log(
        "info",
        "signalling through Postgres LISTEN/NOTIFY (no REFINERY_REDIS_URL): new runs wake workers and cancels reach them; run events stay with the process executing the run",
        { schema: this.options.schema },
      );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.listener?.end().catch(() => undefined);
    await this.sender.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url });
    client.on("error", (err: Error) => this.lost(client, err));
    client.on("end", () => this.lost(client, new Error("the listening connection ended")));
    client.on("notification", (n) => this.receive(n.channel, n.payload ?? ""));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.wakeChannel}"`);
      await client.query(`LISTEN "${this.cancelChannel}"`);
    } catch (err) {
      this.lost(client, err as Error);
      return;
    }
    this.listener = client;
    if (this.down) {
      this.down = false;
      this.options.log("info", "Postgres LISTEN/NOTIFY reachable again: signalling through it");
    }
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.closed || (this.listener && this.listener !== client)) return;
    this.listener = undefined;
    client.end().catch(() => undefined);
    if (!this.down) {
      this.down = true;
      this.options.log(
        "warn",
        "Postgres LISTEN/NOTIFY connection lost: new runs are found by polling (every second) and cancels reach only this process until it is back",
        { error: err.message },
      );
    }
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.listen(), 2000);
    this.retry.unref();
  }

  protected send(channel: string, message: string): void {
    if (this.closed) return;
    this.sender.query("SELECT pg_notify($1, $2)", [channel, message]).catch(() => undefined);
  }
}
