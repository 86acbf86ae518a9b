// What the cross-process signal transports (Redis pub/sub, Postgres LISTEN/NOTIFY) share: two
// channels, wake and cancel, their listeners, and reading a received message. A transport only
// sends a message on a channel and hands what it receives to `receive`.
import type { CancelAction } from "../run-runner.ts";
import type { RunSignals } from "./types.ts";

/** Longest thread id a wake carries; a longer one wakes every thread's streams instead. */
const MAX_THREAD_ID = 256;

export abstract class BroadcastSignals implements Omit<RunSignals, "kind" | "close"> {
  private readonly wakes = new Set<(threadId?: string) => void>();
  private readonly cancels: ((runId: string, action: CancelAction) => void)[] = [];

  protected constructor(
    protected readonly wakeChannel: string,
    protected readonly cancelChannel: string,
  ) {}

  /** Sends `message` on `channel`; dropped while the transport is down. */
  protected abstract send(channel: string, message: string): void;

  /** The message is the thread's id, or "1" (what earlier versions send: any thread). */
  wake(threadId?: string): void {
    this.send(this.wakeChannel, threadId && threadId.length <= MAX_THREAD_ID ? threadId : "1");
  }

  onWake(listener: (threadId?: string) => void): () => void {
    this.wakes.add(listener);
    return () => this.wakes.delete(listener);
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
      const threadId = message !== "1" && message.length <= MAX_THREAD_ID ? message : undefined;
      for (const l of this.wakes) l(threadId);
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
