// The checkpoint archive of a SQLite file (PreparedSqliteSaver, core/checkpointer.ts). A finished
// run leaves about 11 checkpoint rows and 32 pending-write rows: each keyed by 36-character thread,
// checkpoint and task ids, each on its own, so their keys and B-tree pages took more room than the
// text the run produced, and the same text sat in the writes and again in the checkpoints' deltas.
// Once the run is over those rows are history: read only by history listings, time travel and
// forks. `compact` moves a thread's checkpoints other than the latest of each namespace, with
// their pending writes, into one archive row (a segment), all of it deflated together, so the
// repeated text and ids compress against each other. The latest checkpoint of each namespace and
// its pending writes stay where LangGraph's own reads find them, so a run resumes, and a thread's
// state reads, exactly as before; the saver reads archived checkpoints as if they were rows.
//
// A segment's bytes: a format byte, then raw deflate of frames (u32 big-endian lengths, 0xFFFFFFFF
// for null) per checkpoint: id, parent id, type, checkpoint (unpacked), metadata, the number of
// writes, then per write: task id, idx, channel, type, value, deflated at level 9 with a preset
// dictionary (STATE_DICTIONARY, core/packing.ts). Checkpoint ids are time-ordered uuid6, so a segment is found by
// its first and last id.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type Database from "better-sqlite3";
import { unpack } from "./checkpoint-delta.ts";
import { STATE_DICTIONARY } from "./packing.ts";

export const ARCHIVE_TABLE = "refinery_checkpoint_archive";

/** The only segment format so far: frames deflated with STATE_DICTIONARY. */
const FORMAT = 1;

/** Measured on the default refine run (3 iterations, bench:storage): 2,422 bytes a segment at
 * level 9 without the dictionary, 1,843 with it, which is what lets two segments share a 4 KiB
 * page. */
const DEFLATE = { level: 9, dictionary: STATE_DICTIONARY };
const NULL = 0xffffffff;

export interface ArchivedWrite {
  taskId: string;
  idx: number;
  channel: string;
  type: string | null;
  value: Uint8Array | null;
}

/** A checkpoint row as it was in the checkpoints table, with its pending writes. */
export interface ArchivedCheckpoint {
  id: string;
  parentId: string | null;
  type: string | null;
  /** The serialized checkpoint, not packed (see pack in core/checkpoint-delta.ts). */
  checkpoint: Uint8Array;
  metadata: Uint8Array | null;
  writes: ArchivedWrite[];
}

export function createArchiveTable(db: Database.Database): void {
  db.exec(`
CREATE TABLE IF NOT EXISTS ${ARCHIVE_TABLE} (
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL,
  first_id TEXT NOT NULL,
  last_id TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ${ARCHIVE_TABLE}_thread ON ${ARCHIVE_TABLE}(thread_id, checkpoint_ns, last_id);`);
}

export function encodeSegment(rows: ArchivedCheckpoint[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n >>> 0);
    parts.push(b);
  };
  const field = (v: string | Uint8Array | null) => {
    if (v === null) return u32(NULL);
    const b = typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v);
    u32(b.length);
    parts.push(b);
  };
  u32(rows.length);
  for (const r of rows) {
    field(r.id);
    field(r.parentId);
    field(r.type);
    field(r.checkpoint);
    field(r.metadata);
    u32(r.writes.length);
    for (const w of r.writes) {
      field(w.taskId);
      u32(w.idx | 0);
      field(w.channel);
      field(w.type);
      field(w.value);
    }
  }
  const body = deflateRawSync(Buffer.concat(parts), DEFLATE);
  return Buffer.concat([Buffer.of(FORMAT), body]);
}

export function decodeSegment(data: Uint8Array): ArchivedCheckpoint[] {
  if (data[0] !== FORMAT) {
    throw new Error(`checkpoint archive segment of unknown format ${data[0]}`);
  }
  const b = inflateRawSync(data.subarray(1), { dictionary: STATE_DICTIONARY });
  let at = 0;
  const u32 = () => {
    const n = b.readUInt32BE(at);
    at += 4;
    return n;
  };
  const bytes = (): Uint8Array | null => {
    const n = u32();
    if (n === NULL) return null;
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  const text = (): string | null => {
    const v = bytes();
    return v === null ? null : Buffer.from(v).toString("utf8");
  };
  const rows: ArchivedCheckpoint[] = [];
  for (let n = u32(); n > 0; n--) {
    const id = text()!;
    const parentId = text();
    const type = text();
    const checkpoint = bytes() ?? new Uint8Array();
    const metadata = bytes();
    const writes: ArchivedWrite[] = [];
    for (let w = u32(); w > 0; w--) {
      const taskId = text()!;
      const idx = b.readInt32BE(at);
      at += 4;
      writes.push({ taskId, idx, channel: text()!, type: text(), value: bytes() });
    }
    rows.push({ id, parentId, type, checkpoint, metadata, writes });
  }
  return rows;
}

interface SegmentRow {
  rowid: number;
  first_id: string;
  last_id: string;
}

/** The version a checkpoint was written with (4 and up need no pending-sends migration). */
function versionOf(type: string | null, checkpoint: Uint8Array): number {
  if ((type ?? "json") !== "json") return 0;
  const head = Buffer.from(checkpoint.subarray(0, 16)).toString("latin1");
  const m = /^\{"v":(\d+)/.exec(head);
  return m ? Number(m[1]) : 0;
}

/**
 * Reads and writes one file's archive. Statements are prepared once; every method runs inside
 * the caller's transaction where it changes rows.
 */
export class CheckpointArchive {
  private readonly s: Record<string, Database.Statement> = {};

  constructor(private readonly db: Database.Database) {}

  private st(name: string, sql: string): Database.Statement {
    return (this.s[name] ??= this.db.prepare(sql));
  }

  /**
   * Moves every checkpoint of `threadId` older than the latest of its namespace, with its pending
   * writes, into one segment per namespace. Returns the number of checkpoints moved. Rows written
   * before checkpoint version 4 stay (the library migrates their pending sends on read).
   */
  compact(threadId: string): number {
    const heads = this.st(
      "heads",
      "SELECT checkpoint_ns AS ns, MAX(checkpoint_id) AS latest, COUNT(*) AS n FROM checkpoints WHERE thread_id = ? GROUP BY checkpoint_ns",
    ).all(threadId) as { ns: string; latest: string; n: number }[];
    let moved = 0;
    for (const { ns, latest, n } of heads) {
      if (n < 2) continue;
      const rows = this.st(
        "older",
        "SELECT checkpoint_id AS id, parent_checkpoint_id AS parentId, type, checkpoint, metadata FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ? ORDER BY checkpoint_id",
      ).all(threadId, ns, latest) as {
        id: string;
        parentId: string | null;
        type: string | null;
        checkpoint: Uint8Array;
        metadata: Uint8Array | null;
      }[];
      const writes = this.st(
        "olderWrites",
        "SELECT checkpoint_id AS id, task_id AS taskId, idx, channel, type, value FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ? ORDER BY checkpoint_id, task_id, idx",
      ).all(threadId, ns, latest) as (ArchivedWrite & { id: string })[];
      const byId = new Map<string, ArchivedWrite[]>();
      for (const w of writes) {
        const list = byId.get(w.id) ?? [];
        list.push({
          taskId: w.taskId,
          idx: w.idx,
          channel: w.channel,
          type: w.type,
          value: w.value,
        });
        byId.set(w.id, list);
      }
      const segment: ArchivedCheckpoint[] = [];
      for (const r of rows) {
        const checkpoint = unpack(r.checkpoint);
        if (versionOf(r.type, checkpoint) < 4) continue;
        segment.push({ ...r, checkpoint, writes: byId.get(r.id) ?? [] });
      }
      if (segment.length === 0) continue;
      this.st(
        "insert",
        `INSERT INTO ${ARCHIVE_TABLE} (thread_id, checkpoint_ns, first_id, last_id, data) VALUES (?, ?, ?, ?, ?)`,
      ).run(threadId, ns, segment[0]!.id, segment.at(-1)!.id, encodeSegment(segment));
      const dropRow = this.st(
        "dropRow",
        "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
      );
      const dropWrites = this.st(
        "dropWrites",
        "DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
      );
      for (const r of segment) {
        dropRow.run(threadId, ns, r.id);
        dropWrites.run(threadId, ns, r.id);
      }
      moved += segment.length;
    }
    return moved;
  }

  /** Whether `threadId` has archived checkpoints (in `ns`, when given). */
  has(threadId: string, ns?: string): boolean {
    return ns === undefined
      ? this.st("hasAny", `SELECT 1 FROM ${ARCHIVE_TABLE} WHERE thread_id = ? LIMIT 1`).get(
          threadId,
        ) !== undefined
      : this.st(
          "hasNs",
          `SELECT 1 FROM ${ARCHIVE_TABLE} WHERE thread_id = ? AND checkpoint_ns = ? LIMIT 1`,
        ).get(threadId, ns) !== undefined;
  }

  /** The archived checkpoint `id`, reading segments into `cache` (segment rowid to rows). */
  find(
    threadId: string,
    ns: string,
    id: string,
    cache: Map<number, ArchivedCheckpoint[]>,
  ): ArchivedCheckpoint | undefined {
    const segments = this.st(
      "containing",
      `SELECT rowid, first_id, last_id FROM ${ARCHIVE_TABLE} WHERE thread_id = ? AND checkpoint_ns = ? AND last_id >= ? AND first_id <= ?`,
    ).all(threadId, ns, id, id) as SegmentRow[];
    for (const seg of segments) {
      const found = this.rowsOf(seg.rowid, cache).find((r) => r.id === id);
      if (found) return found;
    }
    return undefined;
  }

  /** The latest archived checkpoint of a namespace (a thread whose live rows are gone). */
  latest(
    threadId: string,
    ns: string,
    cache: Map<number, ArchivedCheckpoint[]>,
  ): ArchivedCheckpoint | undefined {
    const seg = this.st(
      "latest",
      `SELECT rowid FROM ${ARCHIVE_TABLE} WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY last_id DESC LIMIT 1`,
    ).get(threadId, ns) as { rowid: number } | undefined;
    if (!seg) return undefined;
    const rows = this.rowsOf(seg.rowid, cache);
    return rows.reduce<ArchivedCheckpoint | undefined>(
      (best, r) => (!best || r.id > best.id ? r : best),
      undefined,
    );
  }

  /**
   * Segments in scope, newest last id first, without their data: of `threadId` (every thread
   * when undefined), of `ns` when given, holding ids below `before` when given.
   */
  segments(
    threadId: string | undefined,
    ns: string | undefined,
    before: string | undefined,
  ): (SegmentRow & { thread_id: string; checkpoint_ns: string })[] {
    const where: string[] = [];
    const args: string[] = [];
    if (threadId !== undefined) {
      where.push("thread_id = ?");
      args.push(threadId);
    }
    if (ns !== undefined) {
      where.push("checkpoint_ns = ?");
      args.push(ns);
    }
    if (before !== undefined) {
      where.push("first_id < ?");
      args.push(before);
    }
    return this.db
      .prepare(
        `SELECT rowid, thread_id, checkpoint_ns, first_id, last_id FROM ${ARCHIVE_TABLE}${
          where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""
        } ORDER BY last_id DESC`,
      )
      .all(...args) as (SegmentRow & { thread_id: string; checkpoint_ns: string })[];
  }

  rowsOf(rowid: number, cache: Map<number, ArchivedCheckpoint[]>): ArchivedCheckpoint[] {
    let rows = cache.get(rowid);
    if (!rows) {
      const row = this.st("data", `SELECT data FROM ${ARCHIVE_TABLE} WHERE rowid = ?`).get(
        rowid,
      ) as { data: Uint8Array } | undefined;
      rows = row ? decodeSegment(row.data) : [];
      cache.set(rowid, rows);
    }
    return rows;
  }

  /**
   * Moves archived checkpoints of `threadId` with ids from `from` on (all of them when null)
   * back into the checkpoints and writes tables, so SQL on those tables (a rollback) sees them.
   * Segments keep what is not moved.
   */
  restore(threadId: string, from: string | null): void {
    const segments = this.db
      .prepare(
        `SELECT rowid, checkpoint_ns, first_id, last_id, data FROM ${ARCHIVE_TABLE} WHERE thread_id = ?${
          from === null ? "" : " AND last_id >= ?"
        }`,
      )
      .all(...(from === null ? [threadId] : [threadId, from])) as (SegmentRow & {
      checkpoint_ns: string;
      data: Uint8Array;
    })[];
    const putRow = this.st(
      "restoreRow",
      "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    const putWrite = this.st(
      "restoreWrite",
      "INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    for (const seg of segments) {
      const rows = decodeSegment(seg.data);
      const back = rows.filter((r) => from === null || r.id >= from);
      const keep = rows.filter((r) => !(from === null || r.id >= from));
      for (const r of back) {
        putRow.run(threadId, seg.checkpoint_ns, r.id, r.parentId, r.type, r.checkpoint, r.metadata);
        for (const w of r.writes) {
          putWrite.run(
            threadId,
            seg.checkpoint_ns,
            r.id,
            w.taskId,
            w.idx,
            w.channel,
            w.type,
            w.value,
          );
        }
      }
      this.st("dropSegment", `DELETE FROM ${ARCHIVE_TABLE} WHERE rowid = ?`).run(seg.rowid);
      if (keep.length > 0) {
        this.st(
          "insert",
          `INSERT INTO ${ARCHIVE_TABLE} (thread_id, checkpoint_ns, first_id, last_id, data) VALUES (?, ?, ?, ?, ?)`,
        ).run(threadId, seg.checkpoint_ns, keep[0]!.id, keep.at(-1)!.id, encodeSegment(keep));
      }
    }
  }

  /** Copies `from`'s segments to thread `to`. */
  copy(from: string, to: string): void {
    this.st(
      "copy",
      `INSERT INTO ${ARCHIVE_TABLE} (thread_id, checkpoint_ns, first_id, last_id, data) SELECT ?, checkpoint_ns, first_id, last_id, data FROM ${ARCHIVE_TABLE} WHERE thread_id = ?`,
    ).run(to, from);
  }

  deleteThread(threadId: string): void {
    this.st("delete", `DELETE FROM ${ARCHIVE_TABLE} WHERE thread_id = ?`).run(threadId);
  }

  truncate(): void {
    this.db.exec(`DELETE FROM ${ARCHIVE_TABLE}`);
  }

  /** Bytes a thread's segments take (for the state limits). */
  bytes(threadId: string): number {
    return (
      this.st(
        "bytes",
        `SELECT COALESCE(SUM(length(data)), 0) AS n FROM ${ARCHIVE_TABLE} WHERE thread_id = ?`,
      ).get(threadId) as { n: number }
    ).n;
  }
}
