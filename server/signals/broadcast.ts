// What the cross-process signal transports (Redis pub/sub, Postgres LISTEN/NOTIFY) share: two
// channels, wake and cancel, their listeners, and reading a received message. A transport only
// sends a message on a channel and hands what it receives to `receive`.
import type { CancelAction } from "../run-runner.ts";
import type { RunSignals } from "./types.ts";

export abstract class BroadcastSignals implements Omit<RunSignals, "kind" | "close"> {
  private readonly wakes: (() => void)[] = [];
  private readonly cancels: ((runId: string, action: CancelAction) => void)[] = [];

  protected constructor(
    protected readonly wakeChannel: string,
    protected readonly cancelChannel: string,
  ) {}

  /** Sends `message` on `channel`; dropped while the transport is down. */
  protected abstract send(channel: string, message: string): void;

  wake(): void {
    this.send(this.wakeChannel, "1");
  }

  onWake(listener: () => void): void {
    this.wakes.push(listener);
  }

  cancel(runId: string, action: CancelAction): void {
    this.send(this.cancelChannel, JSON.stringify({ run_id: runId, action }));
  }

  onCancel(listener: (runId: string, action: CancelAction) => void): void {
    this.cancels.push(listener);
  }

  /** A message received on `channel`: wakes, or a well-formed cancel; anything else is ignored. */
  protected receive(channel: string, message: string): void {
    if (channel === this.wakeChannel) {
      for (const l of this.wakes) l();
      return;
    }
    if (channel !== this.cancelChannel) return;
    let parsed: { run_id?: unknown; action?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    const { run_id: runId, action } = parsed;
    if (typeof runId !== "string" || (action !== "interrupt" && action !== "rollback")) return;
    for (const l of this.cancels) l(runId, action);
  }
}
