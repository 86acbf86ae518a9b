// Signals within one process: callbacks, nothing crosses a process boundary.
import type { CancelAction } from "../run-runner.ts";
import type { RunSignals } from "./types.ts";

export class LocalSignals implements RunSignals {
  readonly kind = "local" as const;
  private readonly wakes = new Set<(threadId?: string) => void>();
  private readonly cancels: ((runId: string, action: CancelAction) => void)[] = [];

  wake(threadId?: string): void {
    for (const l of this.wakes) l(threadId);
  }

  onWake(listener: (threadId?: string) => void): () => void {
    this.wakes.add(listener);
    return () => this.wakes.delete(listener);
  }

  cancel(runId: string, action: CancelAction): void {
    for (const l of this.cancels) l(runId, action);
  }

  onCancel(listener: (runId: string, action: CancelAction) => void): void {
    this.cancels.push(listener);
  }

  async close(): Promise<void> {}
}
