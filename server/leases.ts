// Who holds a lease (a claimed run's, or a duty's): one id per executor or duty runner, made of
// the host name, the process id and a random instance id, so any process can tell a lease whose
// holder died on its own machine (pid gone, or this process with that instance stopped) without
// waiting for the lease to lapse. A holder on another machine is trusted until its lease lapses.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Run } from "../core/storage/types.ts";
import { isLiveLocalRun } from "../graphs/local-runs.ts";

/** Instances alive in this process (several executors share a process in tests). */
const live = new Set<string>();

export interface LeaseHolder {
  /** `host:pid:instance`. */
  readonly id: string;
  /** This holder stopped: its leases are reclaimable at once by processes on this machine. */
  retire(): void;
}

export function newLeaseHolder(): LeaseHolder {
  const instance = randomBytes(6).toString("hex");
  live.add(instance);
  return {
    id: `${hostname()}:${process.pid}:${instance}`,
    retire: () => live.delete(instance),
  };
}

/**
 * True when the holder of `run`'s lease is known to be gone: a holder on this machine whose
 * process no longer exists, or an instance of this process that stopped. A run leased to nobody
 * (`owner` null) is gone unless a live CLI process on this machine executes it.
 */
export function leaseHolderGone(run: Run, owner: string | null): boolean {
  if (owner === null) return !isLiveLocalRun(run);
  return holderIdGone(owner);
}

/**
 * True when the holder `owner` (`host:pid:instance`) is known to be gone: on this machine, its
 * process no longer exists, or it is an instance of this process that stopped.
 */
export function holderIdGone(owner: string): boolean {
  const parts = owner.split(":");
  const instance = parts.pop();
  const pid = Number(parts.pop());
  if (parts.join(":") !== hostname() || !Number.isInteger(pid) || !instance) return false;
  if (pid === process.pid) return !live.has(instance);
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
