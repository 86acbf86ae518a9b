// Periodic duties exactly one process does at a time (approval deadlines and notices, the thread
// and store TTL sweeps, run webhook delivery, resuming evaluation jobs whose process went away),
// when several processes share one database: before each pass a duty asks `holds(name)`, which
// takes or renews the duty's lease (storage.duties). The holder keeps it by passing at least once
// per lease; when it stops (or crashes), another takes the duty over once the lease lapses, or at
// once after a graceful stop (`releaseAll`).
// Crons need none of this: claimDue claims each firing once across processes.
import type { DutyLeaseStore } from "../core/storage/types.ts";
import { newLeaseHolder, type LeaseHolder } from "./leases.ts";
import type { Logger } from "./log.ts";
import { serializeError } from "./serde.ts";

export type DutyName = "approvals" | "thread-sweep" | "store-sweep" | "webhooks" | "eval-jobs";

export class DutyLeader {
  private readonly holder: LeaseHolder = newLeaseHolder();
  private readonly held = new Set<DutyName>();

  constructor(
    private readonly store: DutyLeaseStore,
    /** How long a duty stays with its holder without a pass (at least its interval, say 3×). */
    private readonly leaseMs: (name: DutyName) => number,
    private readonly log: Logger,
  ) {}

  /** True when this process holds `name` now; false (and no pass) when another does. */
  async holds(name: DutyName): Promise<boolean> {
    try {
      const got = await this.store.acquire(name, this.holder.id, this.leaseMs(name));
      if (got && !this.held.has(name))
        this.log("info", "took over a periodic duty", { duty: name });
      if (got) this.held.add(name);
      else this.held.delete(name);
      return got;
    } catch (err) {
      this.log("warn", "could not take a periodic duty's lease", {
        duty: name,
        error: serializeError(err),
      });
      return false;
    }
  }

  /** Graceful stop: every duty held here is free for another process at once. */
  async releaseAll(): Promise<void> {
    for (const name of this.held) {
      await this.store.release(name, this.holder.id).catch(() => undefined);
    }
    this.held.clear();
    this.holder.retire();
  }
}
