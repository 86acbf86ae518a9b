// Run webhooks from the database outbox. A run's end queues its webhook call in the same step
// that records the run's status (RunStore.finish), so a call is never lost to a crash or restart;
// the process holding the "webhooks" duty (server/duties.ts) delivers due calls, one process at a
// time across every process sharing the database. A call that fails with a network error, a 5xx
// or a 429 is retried with exponential backoff up to WEBHOOK_ATTEMPTS; one the outbound policy
// refuses (core/net) or a target answers with another 4xx is given up at once. A call leaves the
// outbox once settled: delivery is at least once, and exactly once unless the process stops
// between the target's answer and settling it.
import { isOutboundError, outbound, type OutboundClient } from "../core/net/outbound.ts";
import type { WebhookDelivery, WebhookOutboxStore } from "../core/storage/types.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { serializeError } from "./serde.ts";

/** Attempts per call before it is given up (the first and four retries). */
export const WEBHOOK_ATTEMPTS = 5;
/** Wait before retry n (1-based): 1 s, 2 s, 4 s, 8 s. */
export const webhookBackoffMs = (attempt: number): number => 1000 * 2 ** (attempt - 1);
/** Calls attempted at once in one pass. */
const BATCH = 16;
const TIMEOUT_MS = 10_000;

export interface WebhookOutboxOptions {
  outbox: WebhookOutboxStore;
  /** True when this process holds the "webhooks" duty now (DutyLeader.holds). */
  duty: () => Promise<boolean>;
  log: Logger;
  metrics?: Metrics;
  /** How often due calls are looked for (a run ending in this process also looks at once). */
  pollMs: number;
  /** The guarded client of this process (default): the outbound policy applies to every call. */
  client?: OutboundClient;
}

export class WebhookOutbox {
  private timer?: NodeJS.Timeout;
  private passing?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(private readonly options: WebhookOutboxOptions) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.options.pollMs);
    this.timer.unref();
    this.kick(); // calls queued before a restart
  }

  /** Looks for due calls now (a run with a webhook ended). */
  kick(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = this.pass()
      .catch((err: unknown) =>
        this.options.log("warn", "run webhook delivery pass failed", {
          error: serializeError(err),
        }),
      )
      .finally(() => {
        this.passing = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Stops looking; a pass under way finishes (its calls are settled or stay queued). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.passing;
  }

  private async pass(): Promise<void> {
    const { outbox, metrics } = this.options;
    if (!(await this.options.duty())) return;
    for (;;) {
      const due = await outbox.due(BATCH);
      await Promise.all(due.map((d) => this.deliver(d)));
      if (due.length < BATCH || this.stopped) break;
    }
    metrics?.webhooksQueued.set(await outbox.count());
  }

  private async deliver(call: WebhookDelivery): Promise<void> {
    const { outbox, log, metrics } = this.options;
    const attempt = call.attempts + 1;
    const ids = { run_id: call.run_id, url: call.url, attempt };
    let failure: string;
    try {
      const res = await (this.options.client ?? outbound).request(call.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: call.body,
        timeoutMs: TIMEOUT_MS,
      });
      if (res.ok) {
        await outbox.settle(call.run_id);
        metrics?.webhookDeliveries.inc({ result: "delivered" });
        return;
      }
      failure = `HTTP ${res.status}`;
      if (res.status < 500 && res.status !== 429) return this.giveUp(call, ids, failure);
    } catch (err) {
      // The policy will not change between attempts.
      if (isOutboundError(err) && (err.reason === "denied" || err.reason === "invalid_url")) {
        await outbox.settle(call.run_id);
        metrics?.webhookDeliveries.inc({ result: "failed" });
        log("warn", "run webhook not called", { ...ids, reason: err.message, fix: err.fix });
        return;
      }
      failure = err instanceof Error ? err.message : String(err);
    }
    if (attempt >= WEBHOOK_ATTEMPTS) return this.giveUp(call, ids, failure);
    await outbox.retry(call.run_id, webhookBackoffMs(attempt), failure);
    metrics?.webhookDeliveries.inc({ result: "retry" });
    log("info", "run webhook failed; retrying", {
      ...ids,
      reason: failure,
      retry_in_ms: webhookBackoffMs(attempt),
    });
  }

  private async giveUp(
    call: WebhookDelivery,
    ids: Record<string, unknown>,
    reason: string,
  ): Promise<void> {
    await this.options.outbox.settle(call.run_id);
    this.options.metrics?.webhookDeliveries.inc({ result: "failed" });
    this.options.log("warn", "run webhook failed", { ...ids, reason });
  }
}
