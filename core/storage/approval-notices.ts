// Delivery state of approval webhooks (server/approval-watcher.ts): one notice per pending
// interrupt, with its attempts and when to try next, so retries survive restarts.
// One implementation per backend (core/storage/sqlite, core/storage/postgres).

export interface ApprovalNotice {
  attempts: number;
  /** Epoch ms before which no new attempt is made. */
  next_at: number;
  delivered_at: string | null;
}

export interface ApprovalNotices {
  /** The notice of an interrupt; created (no attempts yet) on first sight. */
  get(threadId: string, interruptId: string): Promise<ApprovalNotice>;
  delivered(threadId: string, interruptId: string, attempts: number, at: string): Promise<void>;
  failed(threadId: string, interruptId: string, attempts: number, nextAt: number): Promise<void>;
}
