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
// writes, then per write: task id, idx, channel, type, value, deflated (level 6) with a preset
// dictionary (STATE_DICTIONARY, core/packing.ts). Checkpoint ids are time-ordered uuid6, so a segment is found by
// its first and last id.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type Database from "better-sqlite3";
import { isPacked, pack, unpack } from "./checkpoint-delta.ts";
import { STATE_DICTIONARY } from "./packing.ts";

export const ARCHIVE_TABLE = "refinery_checkpoint_archive";

/** Frames deflated with STATE_DICTIONARY (the SQLite layout). */
const FORMAT = 1;
/** FORMAT's frames, then the channel blobs the checkpoints refer to (the Postgres layout). */
const FORMAT_WITH_BLOBS = 2;

/** Measured on the default refine run (3 iterations, bench:storage): 2,422 bytes a segment at
 * level 9 without the dictionary, 1,843 with it, which is what lets two segments share a 4 KiB
 * page; level 6: 1,847 bytes in half the time of level 9 (0.18 against 0.38 ms). */
const DEFLATE = { level: 6, dictionary: STATE_DICTIONARY };
const NULL = 0xffffffff;

export interface ArchivedWrite {
  taskId: string;
  idx: number;
  channel: string;
  type: string | null;
  value: Uint8Array | null;
}

/** A channel value by version (Postgres keeps them apart from the checkpoints). */
export interface ArchivedBlob {
  channel: string;
  version: string;
  type: string;
  blob: Uint8Array | null;
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

/** A segment's bytes: `rows`, and for the Postgres layout the blobs they refer to. */
export function encodeSegment(rows: ArchivedCheckpoint[], blobs?: ArchivedBlob[]): Buffer {
  // Two passes: sizes, then one buffer written in place (a Buffer per field cost more than
  // deflating the segment).
  const fields: (string | Uint8Array | null | number)[] = [rows.length];
  for (const r of rows) {
    fields.push(r.id, r.parentId, r.type, r.checkpoint, r.metadata, r.writes.length);
    for (const w of r.writes) fields.push(w.taskId, w.idx | 0, w.channel, w.type, w.value);
  }
  if (blobs) {
    fields.push(blobs.length);
    for (const b of blobs) fields.push(b.channel, b.version, b.type, b.blob);
  }
  let size = 0;
  for (const f of fields) {
    size += 4;
    if (typeof f === "string") size += Buffer.byteLength(f, "utf8");
    else if (f !== null && typeof f === "object") size += f.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const f of fields) {
    if (typeof f === "number") {
      out.writeUInt32BE(f >>> 0, at);
      at += 4;
    } else if (f === null) {
      out.writeUInt32BE(NULL, at);
      at += 4;
    } else if (typeof f === "string") {
      const n = out.write(f, at + 4, "utf8");
      out.writeUInt32BE(n, at);
      at += 4 + n;
    } else {
      out.writeUInt32BE(f.length, at);
      out.set(f, at + 4);
      at += 4 + f.length;
    }
  }
  const body = deflateRawSync(out, DEFLATE);
  const segment = Buffer.allocUnsafe(body.length + 1);
  segment[0] = blobs ? FORMAT_WITH_BLOBS : FORMAT;
  body.copy(segment, 1);
  return segment;
}

export function decodeSegment(data: Uint8Array): ArchivedCheckpoint[] {
  return decodeSegmentWithBlobs(data).rows;
}

export function decodeSegmentWithBlobs(data: Uint8Array): {
  rows: ArchivedCheckpoint[];
  blobs: ArchivedBlob[];
} {
  if (data[0] !== FORMAT && data[0] !== FORMAT_WITH_BLOBS) {
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
  const blobs: ArchivedBlob[] = [];
  if (data[0] === FORMAT_WITH_BLOBS) {
    for (let n = u32(); n > 0; n--) {
      blobs.push({ channel: text()!, version: text()!, type: text()!, blob: bytes() });
    }
  }
  return { rows, blobs };
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
      this.packRow(threadId, ns, latest);
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

  /**
   * Packs (core/checkpoint-delta.ts) the live checkpoint row `id` when it was stored raw: a saver
   * that defers packing (`packOnCompact`) leaves each row as serialized, since all but the
   * latest move into a segment, which is deflated as a whole, when its run ends.
   */
  private packRow(threadId: string, ns: string, id: string): void {
    const row = this.st(
      "latestRow",
      "SELECT checkpoint FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
    ).get(threadId, ns, id) as { checkpoint: Uint8Array | string | null } | undefined;
    const raw = row?.checkpoint;
    if (!(raw instanceof Uint8Array) || isPacked(raw)) return;
    const packed = pack(raw);
    if (packed === raw) return;
    this.st(
      "packLatest",
      "UPDATE checkpoints SET checkpoint = ? WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
    ).run(packed, threadId, ns, id);
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
    // Eight shapes at most, each prepared once (a history listing runs this every time).
    const clause = where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "";
    return this.st(
      `segments${clause}`,
      `SELECT rowid, thread_id, checkpoint_ns, first_id, last_id FROM ${ARCHIVE_TABLE}${clause} ORDER BY last_id DESC`,
    ).all(...args) as (SegmentRow & { thread_id: string; checkpoint_ns: string })[];
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
