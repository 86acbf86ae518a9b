// Cancels kept in the database, for a cancel signal that never arrives: Redis down (its messages
// are dropped), the Postgres LISTEN/NOTIFY connection lost, or a process that missed the message.
// A process cancelling a run that executes elsewhere holds the duty lease `cancel:<run_id>`
// (storage.duties, owner `<action>:<its lease id>`) while it waits for the run to stop, and also
// sends the signal; every executor with runs in flight reads the leases of its runs at each poll
// (`REFINERY_POLL_MS`-like cadence, 1 s by default), so the cancel reaches the run within about a
// second even without a signal. The lease lapses by itself if the canceller dies.
import type { DutyLeaseStore } from "../../core/storage/types.ts";
import type { CancelAction } from "../run-runner.ts";

const PREFIX = "cancel:";

const nameOf = (runId: string) => `${PREFIX}${runId}`;

/** Records a cancel of `runId` for `ttlMs`; returns the owner to withdraw it with. */
export async function requestCancel(
  duties: DutyLeaseStore,
  runId: string,
  action: CancelAction,
  holder: string,
  ttlMs: number,
): Promise<string> {
  const owner = `${action}:${holder}`;
  // Another canceller may hold it already: its request stands, and this one waits on it too.
  await duties.acquire(nameOf(runId), owner, ttlMs);
  return owner;
}

/** Withdraws a cancel this process recorded (the run stopped, or the canceller gave up). */
export async function withdrawCancel(
  duties: DutyLeaseStore,
  runId: string,
  owner: string,
): Promise<void> {
  await duties.release(nameOf(runId), owner);
}

/**
 * Deletes cancel leases that lapsed over `graceMs` ago: a canceller withdraws its own, so these
 * are the ones of a process that died while it waited. A lapsed lease already counts for nothing
 * (cancelsRequested skips it); this only keeps the table from growing. Returns how many.
 */
export async function sweepLapsedCancels(duties: DutyLeaseStore, graceMs: number): Promise<number> {
  return duties.sweep(PREFIX, graceMs);
}

/** The runs among `runIds` someone asked to cancel, with the action asked. */
export async function cancelsRequested(
  duties: DutyLeaseStore,
  runIds: string[],
): Promise<Map<string, CancelAction>> {
  const found = new Map<string, CancelAction>();
  if (runIds.length === 0) return found;
  const held = await duties.holders(runIds.map(nameOf));
  for (const [name, owner] of held) {
    const action = owner.slice(0, owner.indexOf(":"));
    if (action === "interrupt" || action === "rollback")
      found.set(name.slice(PREFIX.length), action);
  }
  return found;
}
