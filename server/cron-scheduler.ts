// Fires crons (POST /runs/crons): every `pollMs` it claims the firings that are due
// (storage.crons.claimDue: one process of those sharing the database claims each (cron, fire
// time), and next_run_date moves past now, so a cron missed while the server was down fires
// once) and makes each an ordinary run through the run service, as its creator's request would
// (auth handler, tenant, per-tenant run cap, config and input validation). A firing whose run
// cannot be made (thread busy with multitask_strategy reject, run cap reached, assistant gone,
// creator's key revoked) is skipped and recorded, not retried: the next one comes on schedule.
// Claiming comes before the run: a process that dies between the two loses that one firing
// rather than ever running it twice.
import { nextFireTime } from "../core/cron.ts";
import { isRefineryError } from "../core/errors.ts";
import type { DueCron, Storage } from "../core/storage/types.ts";
import { restoreAuth, type AuthBackend } from "./auth/index.ts";
import type { Logger } from "./log.ts";
import type { RunService } from "./run-service.ts";

export interface CronSchedulerDeps {
  storage: Storage;
  runs: Pick<RunService, "create">;
  /** The server's auth backend: each firing acts as the cron's creator. */
  auth?: AuthBackend;
  log: Logger;
  /** The scheduler's clock (ms since the epoch); tests drive it. */
  now?: () => number;
  pollMs?: number;
  /** Firings claimed per transaction. */
  batch?: number;
}

/** Batches one tick goes through at most (the rest wait for the next tick). */
const MAX_BATCHES = 20;

export class CronScheduler {
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<number>;
  private stopped = false;
  readonly now: () => number;

  constructor(private readonly deps: CronSchedulerDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => {
      // A pass still under way is enough: timer passes never pile up.
      if (this.ticking) return;
      void this.tick().catch((err: unknown) =>
        this.deps.log("warn", "cron pass failed", { message: (err as Error).message }),
      );
    }, this.deps.pollMs ?? 1000);
    this.timer.unref();
  }

  /** No new passes; resolves once the one under way (if any) is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking?.catch(() => undefined);
  }

  /**
   * One pass that starts now: claims what is due and fires it; returns how many runs it made. A
   * pass under way (the timer's, which read the clock before this call) is waited for first.
   */
  async tick(): Promise<number> {
    while (this.ticking) await this.ticking.catch(() => undefined);
    const pass = this.pass().finally(() => {
      if (this.ticking === pass) this.ticking = undefined;
    });
    this.ticking = pass;
    return pass;
  }

  private async pass(): Promise<number> {
    const batch = this.deps.batch ?? 50;
    let made = 0;
    for (let i = 0; i < MAX_BATCHES && !this.stopped; i++) {
      const now = new Date(this.now());
      const due = await this.deps.storage.crons.claimDue(now.toISOString(), batch, (cron) =>
        nextFireTime(cron.schedule, cron.timezone, now, cron.end_time),
      );
      for (const cron of due) if (await this.fire(cron)) made++;
      if (due.length < batch) break;
    }
    return made;
  }

  private async fire(cron: DueCron): Promise<boolean> {
    const { storage, log } = this.deps;
    const auth = restoreAuth(this.deps.auth, cron.owner);
    if (!auth) {
      const error = "its creator is no longer accepted by this server's auth";
      log("warn", "cron not fired", { cron_id: cron.cron_id, fire_at: cron.fire_at, error });
      await storage.crons.recordFiring(cron.cron_id, cron.fire_at, { error });
      return false;
    }
    const body: Record<string, unknown> = {
      ...cron.payload,
      assistant_id: cron.assistant_id,
      ...(cron.thread_id === null ? { on_completion: cron.on_run_completed ?? "delete" } : {}),
    };
    try {
      const { run } = await this.deps.runs.create(auth, cron.thread_id ?? undefined, body);
      await storage.crons.recordFiring(cron.cron_id, cron.fire_at, { run_id: run.run_id });
      log("info", "cron fired", {
        cron_id: cron.cron_id,
        fire_at: cron.fire_at,
        run_id: run.run_id,
        thread_id: run.thread_id,
      });
      return true;
    } catch (err) {
      const error = isRefineryError(err) ? err.toLine() : (err as Error).message;
      log("warn", "cron not fired", { cron_id: cron.cron_id, fire_at: cron.fire_at, error });
      await storage.crons.recordFiring(cron.cron_id, cron.fire_at, { error });
      return false;
    }
  }
}
