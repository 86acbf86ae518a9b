// Checkpoints stored as differences from their parent (PreparedSqliteSaver, core/checkpointer.ts).
// A checkpoint repeats every channel value of the state, so a run of N steps wrote each draft and
// critique up to N times. A delta row holds only what changed since the parent checkpoint: the
// channel values and versions that moved, the versions_seen of the nodes that ran, and for a list
// channel that only grew (an append reducer), just the new items. Each value is then stored once
// per version, as LangGraph's Postgres saver does with checkpoint_blobs, but keyed by the parent
// checkpoint's id, which is unique even when time travel forks a thread (channel versions are
// not: a fork numbers its versions again from the checkpoint it starts from).
//
// A row without the DELTA key is a whole checkpoint (a keyframe), exactly as the library's
// SqliteSaver writes it; databases written before deltas hold only those. Reading a delta walks
// its parents up to the nearest keyframe, so a keyframe is written at least every MAX_DEPTH
// checkpoints, and whenever the saver does not hold the parent's state in memory. Checkpoint rows
// are also deflated when that makes them smaller (pack).
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { Checkpoint, SerializerProtocol } from "@langchain/langgraph-checkpoint";

/** The key a delta row carries in its checkpoint object. */
export const DELTA = "refinery_delta";

/** A keyframe at least every this many checkpoints along a thread's parents. */
export const MAX_DEPTH = 24;

/** What a delta row adds to the fields of a checkpoint. */
interface DeltaInfo {
  /** Checkpoints back to the keyframe (1: the parent is one). */
  depth: number;
  /** List channels that grew: the items appended to the parent's list. */
  appended?: Record<string, unknown[]>;
  /** Channel values, channel versions and versions_seen entries the parent had and this lacks. */
  removed?: { values?: string[]; versions?: string[]; seen?: string[] };
}

/** A checkpoint's state as the saver remembers it to diff the next one against. */
export interface Remembered {
  id: string;
  depth: number;
  /** The whole checkpoint's serialized bytes, estimated from `sizes` after a delta. */
  bytes: number;
  /** Each channel value's bytes as JSON. */
  sizes: Record<string, number>;
  values: Record<string, unknown>;
  versions: Checkpoint["channel_versions"];
  seen: Checkpoint["versions_seen"];
}

/** A value's bytes as JSON (0 for what JSON cannot hold; an estimate for the limits). */
function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? "");
  } catch {
    return 0;
  }
}

/**
 * The size of a whole checkpoint: `bytes` when it is known (it was serialized whole), else the
 * parent's with the changed channels measured again; `stored` is the row written for it.
 */
export function sizeOf(
  checkpoint: Checkpoint,
  parent: Remembered | undefined,
  stored: Checkpoint,
  bytes: number | undefined,
): { bytes: number; sizes: Record<string, number> } {
  const info = deltaOf(stored);
  if (!parent || !info) {
    const sizes: Record<string, number> = {};
    for (const [k, v] of Object.entries(checkpoint.channel_values)) sizes[k] = jsonBytes(v);
    const sum = Object.values(sizes).reduce((a, b) => a + b, 0);
    return { bytes: bytes ?? sum + jsonBytes({ ...checkpoint, channel_values: {} }), sizes };
  }
  const sizes = { ...parent.sizes };
  let total = parent.bytes;
  const set = (k: string, n: number) => {
    total += n - (sizes[k] ?? 0);
    sizes[k] = n;
  };
  for (const k of info.removed?.values ?? []) set(k, 0);
  for (const [k, v] of Object.entries(stored.channel_values)) set(k, jsonBytes(v));
  for (const [k, tail] of Object.entries(info.appended ?? {})) {
    set(k, (sizes[k] ?? 0) + Math.max(0, jsonBytes(tail) - 2));
  }
  return { bytes: total, sizes };
}

/** Copies what `diff` compares, so later in-place changes to the state do not fool it. */
export function remember(
  checkpoint: Checkpoint,
  depth: number,
  size: { bytes: number; sizes: Record<string, number> },
): Remembered {
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(checkpoint.channel_values)) {
    values[k] = Array.isArray(v) ? v.slice() : v;
  }
  return {
    id: checkpoint.id,
    depth,
    ...size,
    values,
    versions: { ...checkpoint.channel_versions },
    seen: { ...checkpoint.versions_seen },
  };
}

const sameMap = (a: Record<string, unknown> | undefined, b: Record<string, unknown>) => {
  if (!a) return false;
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  return keys.every((k) => a[k] === b[k]);
};

/** The items `next` appended to `prev`, or undefined when `next` is not `prev` plus items. */
function appendedTo(prev: unknown, next: unknown[]): unknown[] | undefined {
  if (!Array.isArray(prev) || next.length < prev.length) return undefined;
  for (let i = 0; i < prev.length; i++) if (prev[i] !== next[i]) return undefined;
  return next.slice(prev.length);
}

/** The delta row for `checkpoint`, whose parent is `parent`. */
export function diff(parent: Remembered, checkpoint: Checkpoint): Checkpoint {
  const values: Record<string, unknown> = {};
  const appended: Record<string, unknown[]> = {};
  const versions: Checkpoint["channel_versions"] = {};
  const seen: Checkpoint["versions_seen"] = {};
  const removed: { values?: string[]; versions?: string[]; seen?: string[] } = {};
  const cv = checkpoint.channel_versions;
  for (const [k, v] of Object.entries(checkpoint.channel_values)) {
    const had = k in parent.values;
    const prev = parent.values[k];
    if (had && parent.versions[k] === cv[k]) {
      if (Array.isArray(v) ? appendedTo(prev, v)?.length === 0 : v === prev) continue;
    }
    const tail = had && Array.isArray(v) ? appendedTo(prev, v) : undefined;
    if (tail) appended[k] = tail;
    else values[k] = v;
  }
  for (const k of Object.keys(parent.values)) {
    if (!(k in checkpoint.channel_values)) (removed.values ??= []).push(k);
  }
  for (const [k, v] of Object.entries(cv)) if (parent.versions[k] !== v) versions[k] = v;
  for (const k of Object.keys(parent.versions)) {
    if (!(k in cv)) (removed.versions ??= []).push(k);
  }
  for (const [k, v] of Object.entries(checkpoint.versions_seen)) {
    if (!sameMap(parent.seen[k], v)) seen[k] = v;
  }
  for (const k of Object.keys(parent.seen)) {
    if (!(k in checkpoint.versions_seen)) (removed.seen ??= []).push(k);
  }
  const info: DeltaInfo = { depth: parent.depth + 1 };
  if (Object.keys(appended).length > 0) info.appended = appended;
  if (Object.keys(removed).length > 0) info.removed = removed;
  const delta = {
    ...checkpoint,
    channel_values: values,
    channel_versions: versions,
    versions_seen: seen,
    [DELTA]: info,
  };
  return delta;
}

/** The delta information of a stored checkpoint, or undefined for a whole one. */
export function deltaOf(stored: Checkpoint): DeltaInfo | undefined {
  return (stored as unknown as Record<string, DeltaInfo | undefined>)[DELTA];
}

/** The whole checkpoint a delta row stands for, given its parent's whole checkpoint. */
export function apply(parent: Checkpoint, stored: Checkpoint): Checkpoint {
  const info = deltaOf(stored) as DeltaInfo;
  const { [DELTA]: _info, ...rest } = stored as unknown as Record<string, unknown>;
  const values = { ...parent.channel_values };
  const versions = { ...parent.channel_versions };
  const seen = { ...parent.versions_seen };
  for (const k of info.removed?.values ?? []) delete values[k];
  for (const k of info.removed?.versions ?? []) delete versions[k];
  for (const k of info.removed?.seen ?? []) delete seen[k];
  Object.assign(values, stored.channel_values);
  for (const [k, tail] of Object.entries(info.appended ?? {})) {
    values[k] = (parent.channel_values[k] as unknown[]).concat(tail);
  }
  Object.assign(versions, stored.channel_versions);
  Object.assign(seen, stored.versions_seen);
  return {
    ...(rest as unknown as Checkpoint),
    channel_values: values,
    channel_versions: versions,
    versions_seen: seen,
  };
}

/** The first byte of a deflated checkpoint row; serialized JSON never starts with it. */
const DEFLATED = 0;

/**
 * A checkpoint row as stored: deflated behind a NUL byte when that is smaller (a delta's text
 * compresses about 2:1), else as it is. Only checkpoint rows: the library reads pending writes
 * as text.
 */
export function pack(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 128) return bytes;
  // A 2 KiB window and less memory: most rows are under 1 KiB, and setting up zlib's default
  // 32 KiB window cost more than compressing (measured: 91 -> 18 us per 0.9 KB row, 2% larger).
  const deflated = deflateRawSync(bytes, { windowBits: 11, memLevel: 5 });
  if (deflated.length + 1 >= bytes.length) return bytes;
  const out = new Uint8Array(deflated.length + 1);
  out[0] = DEFLATED;
  out.set(deflated, 1);
  return out;
}

/** Whether `bytes` is a row pack deflated. */
export function isPacked(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === DEFLATED;
}

/** A row's serialized bytes as they were before pack. */
export function unpack(bytes: Uint8Array): Uint8Array {
  return isPacked(bytes) ? inflateRawSync(bytes.subarray(1)) : bytes;
}

/** `serde`, reading packed rows too (see pack). */
export function unpacking(serde: SerializerProtocol): SerializerProtocol {
  return {
    dumpsTyped: (data) => serde.dumpsTyped(data),
    loadsTyped: (type, data) =>
      serde.loadsTyped(type, typeof data === "string" ? data : unpack(data)),
  };
}

/**
 * The key a checkpoint's metadata carries when it is stored as a change from its parent's: a
 * run's `config.metadata` (run, thread, graph and assistant ids…) is the same in each of its
 * checkpoints, so a child stores only the keys whose value changed (`source`, `step`, …), with
 * `removed` naming keys the parent had and it has not.
 */
export const METADATA_DELTA = "refinery_metadata_delta";

type Metadata = Record<string, unknown>;

export const isMetadataDelta = (m: unknown): boolean =>
  typeof m === "object" && m !== null && METADATA_DELTA in m;

/** The whole metadata of a row stored as a change (`stored`) from its parent's whole one. */
export function applyMetadata(parent: Metadata, stored: Metadata): Metadata {
  const info = stored[METADATA_DELTA] as { removed?: string[] } | number;
  const removed = new Set(typeof info === "object" && info.removed ? info.removed : []);
  const out: Metadata = {};
  for (const [k, v] of Object.entries(parent)) {
    if (!removed.has(k)) out[k] = k in stored ? stored[k] : v;
  }
  for (const [k, v] of Object.entries(stored)) if (k !== METADATA_DELTA && !(k in out)) out[k] = v;
  return out;
}

/**
 * `whole` as a change from `parent`, or undefined when that would not read back as the same
 * JSON, keys in the same order (then the row keeps its whole metadata).
 */
export function diffMetadata(parent: Metadata, whole: Metadata): Metadata | undefined {
  if (isMetadataDelta(whole)) return undefined;
  try {
    const stored: Metadata = {};
    for (const [k, v] of Object.entries(whole)) {
      if (!(k in parent) || JSON.stringify(parent[k]) !== JSON.stringify(v)) stored[k] = v;
    }
    const removed = Object.keys(parent).filter((k) => !(k in whole));
    stored[METADATA_DELTA] = removed.length > 0 ? { removed } : 1;
    return JSON.stringify(applyMetadata(parent, stored)) === JSON.stringify(whole)
      ? stored
      : undefined;
  } catch {
    // A value JSON cannot hold (a BigInt): keep the whole metadata.
    return undefined;
  }
}
