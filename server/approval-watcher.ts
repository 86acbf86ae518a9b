// Enforces what happens around a pending approval while nobody is looking: the webhook POST
// when an approval becomes pending (HMAC-signed, retried with backoff) and the deadline policy
// (approve or reject on expiry). State lives in the database, so both survive restarts.
import { createHmac } from "node:crypto";
import {
  isApprovalRequest,
  type ApprovalDecision,
  type ApprovalOptions,
  type ApprovalRequest,
} from "../core/approval.ts";
import { refineOptionsFromConfigurable } from "../core/config.ts";
import { outbound, type OutboundClient } from "../core/net/outbound.ts";
import type { ApprovalNotices } from "../core/storage/approval-notices.ts";
import type { Storage, Thread } from "../core/storage/types.ts";
import type { Logger } from "./log.ts";

export interface ApprovalWatcherDeps {
  /** Delivery state of the webhooks, in the database. */
  notices: ApprovalNotices;
  storage: Storage;
  log: Logger;
  /** Starts a run that resumes the thread with a decision (the runs router provides it). */
  resume(threadId: string, decision: ApprovalDecision): Promise<unknown>;
  /** Delivers the webhook (default: the process's guarded client). */
  outbound?: OutboundClient;
  intervalMs?: number;
  now?: () => number;
  /** False when another process does this duty now (server/duties.ts); default: always ours. */
  duty?: () => Promise<boolean>;
}

const MAX_ATTEMPTS = 6;

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

export class ApprovalWatcher {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(private readonly deps: ApprovalWatcherDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass over interrupted threads (exported for tests). */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      if (this.deps.duty && !(await this.deps.duty())) return;
      const threads = await this.deps.storage.threads.search({
        status: "interrupted",
        limit: 500,
        sort_by: "updated_at",
        sort_order: "asc",
      });
      for (const thread of threads) {
        for (const { id, request } of pendingApprovals(thread)) {
          const options = await this.optionsFor(thread);
          await this.expire(thread, request, options);
          if (options?.webhook) await this.notify(thread, id, request, options.webhook);
        }
      }
    } catch (err) {
      this.deps.log("warn", "approval watcher pass failed", { message: (err as Error).message });
    } finally {
      this.running = false;
    }
  }

  private async optionsFor(thread: Thread): Promise<ApprovalOptions | undefined> {
    const [run] = await this.deps.storage.runs.list(thread.thread_id, { limit: 1 });
    let fromRun: ApprovalOptions | undefined;
    try {
      fromRun = refineOptionsFromConfigurable(run?.kwargs.config.configurable).approval;
    } catch {
      fromRun = undefined;
    }
    const stored = (thread.values as { options?: { approval?: ApprovalOptions } } | null)?.options
      ?.approval;
    return fromRun ?? stored;
  }

  private async expire(
    thread: Thread,
    request: ApprovalRequest,
    options: ApprovalOptions | undefined,
  ): Promise<void> {
    const policy = request.onExpiry ?? options?.onExpiry ?? "wait";
    if (!request.deadline || policy === "wait") return;
    if (Date.parse(request.deadline) > (this.deps.now?.() ?? Date.now())) return;
    const decision: ApprovalDecision =
      policy === "approve"
        ? {
            action: "approve",
            comment: `approval deadline ${request.deadline} passed: approved automatically`,
          }
        : {
            action: "reject",
            feedback: `approval deadline ${request.deadline} passed: no reviewer answered, revise and resubmit`,
          };
    try {
      await this.deps.resume(thread.thread_id, decision);
      this.deps.log("info", "approval deadline applied", { thread_id: thread.thread_id, policy });
    } catch (err) {
      // A reviewer answered at the same moment (409) — theirs wins.
      this.deps.log("info", "approval deadline not applied", {
        thread_id: thread.thread_id,
        message: (err as Error).message,
      });
    }
  }

  private async notify(
    thread: Thread,
    interruptId: string,
    request: ApprovalRequest,
    hook: NonNullable<ApprovalOptions["webhook"]>,
  ): Promise<void> {
    const { notices } = this.deps;
    const now = this.deps.now?.() ?? Date.now();
    const row = await notices.get(thread.thread_id, interruptId);
    if (row.delivered_at || row.attempts >= MAX_ATTEMPTS || row.next_at > now) return;
    const body = JSON.stringify({
      event: "approval.pending",
      thread_id: thread.thread_id,
      interrupt_id: interruptId,
      request,
      at: new Date(now).toISOString(),
    });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (hook.secret) headers["x-refinery-signature"] = signBody(hook.secret, body);
    let ok = false;
    let failure = "";
    try {
      const res = await (this.deps.outbound ?? outbound).request(hook.url, {
        method: "POST",
        headers,
        body,
        timeoutMs: 10_000,
      });
      ok = res.ok;
      failure = `HTTP ${res.status}`;
    } catch (err) {
      ok = false;
      failure = err instanceof Error ? err.message : String(err);
    }
    const attempts = row.attempts + 1;
    if (ok) {
      await notices.delivered(thread.thread_id, interruptId, attempts, new Date(now).toISOString());
      return;
    }
    // Exponential backoff with jitter: ~1 s, 2 s, 4 s ... capped at 5 min.
    const delay = Math.min(300_000, 1000 * 2 ** (attempts - 1)) * (0.5 + Math.random() / 2);
    await notices.failed(thread.thread_id, interruptId, attempts, Math.round(now + delay));
    this.deps.log("warn", "approval webhook failed", {
      thread_id: thread.thread_id,
      url: hook.url,
      attempts,
      reason: failure,
    });
  }
}

function pendingApprovals(thread: Thread): { id: string; request: ApprovalRequest }[] {
  const out: { id: string; request: ApprovalRequest }[] = [];
  for (const [taskId, list] of Object.entries(thread.interrupts ?? {})) {
    for (const i of list as { id?: string; value?: unknown }[]) {
      if (isApprovalRequest(i.value)) out.push({ id: i.id ?? taskId, request: i.value });
    }
  }
  return out;
}
