// The checkpoint archive on Postgres, as on SQLite (core/checkpoint-archive.ts): when a run ends,
// a thread's checkpoints before the latest of each namespace move into one segment row with their
// pending writes and the channel blobs they refer to (each blob once per segment), deflated
// together. The latest checkpoint of each namespace and its writes stay in PostgresSaver's tables,
// so runs resume and states read as before; LimitedPostgresSaver reads archived checkpoints
// through the library's own loaders (core/storage/postgres/saver.ts). Once no run of the thread
// is pending or running, the latest checkpoints are packed: their blobs move from one
// checkpoint_blobs row per channel into the checkpoint's own row, deflated with the checkpoint
// itself (its versions), whose JSONB column keeps only `v`, `id` and `ts` (see compact).
import type pg from "pg";
import {
  decodeSegmentWithBlobs,
  encodeSegment,
  type ArchivedBlob,
  type ArchivedCheckpoint,
  type ArchivedWrite,
} from "../../checkpoint-archive.ts";

export interface PgSegment {
  rows: ArchivedCheckpoint[];
  /** Blobs by `${channel}\u0000${version}`. */
  blobs: Map<string, ArchivedBlob>;
}

/** Two strings as one map key (a blob's channel and version, a checkpoint's namespace and id). */
export const pairKey = (a: string, b: string) => `${a}\u0000${b}`;

type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

/**
 * The advisory lock (with the thread's hash) that serialises compactions and restores of a
 * thread; puts outside a run take it shared (LimitedPostgresSaver.guarded).
 */
export const ARCHIVE_LOCK = 0x52464341; // "RFCA"

/** The type of the pseudo blob the saver's SELECT returns for a packed checkpoint. */
export const PACKED_TYPE = "refinery-packed";

/**
 * Holds the thread's archive lock until the caller's transaction ends: alone (a compaction, a
 * restore, a prune), or shared (a copy, a put outside a run), which no compaction runs beside.
 */
export const lockThread = (c: pg.PoolClient, threadId: string, shared = false) =>
  c.query(`SELECT pg_advisory_xact_lock${shared ? "_shared" : ""}($1, hashtext($2))`, [
    ARCHIVE_LOCK,
    threadId,
  ]);

export class PostgresCheckpointArchive {
  readonly table: string;
  private readonly cp: string;
  private readonly bl: string;
  private readonly wr: string;
  private readonly threads: string;
  private readonly runs: string;

  /**
   * `pack`: whether compactions pack the latest checkpoints. A process of a version before packing
   * reads a packed checkpoint as one without values, so a rolling upgrade from one turns it off
   * (REFINERY_PACK_CHECKPOINTS=off) until every process reads them; reading is always on.
   */
  constructor(
    schema: string,
    private readonly pack = true,
  ) {
    const S = `"${schema}"`;
    this.table = `${S}.refinery_checkpoint_archive`;
    this.cp = `${S}.checkpoints`;
    this.bl = `${S}.checkpoint_blobs`;
    this.wr = `${S}.checkpoint_writes`;
    this.threads = `${S}.refinery_threads`;
    this.runs = `${S}.refinery_runs`;
  }

  /**
   * Inside the caller's transaction on `c`: moves every checkpoint of `threadId` older than the
   * latest of its namespace into one segment per namespace (rows written before checkpoint
   * version 4 stay), then packs the latest checkpoint of each namespace: its channel blobs and the
   * checkpoint itself go into its own row (`packed`, a segment of that one checkpoint and its
   * blobs), and its `checkpoint` column keeps `v`, `id` and `ts`. Last, the thread's blobs that no
   * remaining unpacked checkpoint refers to are deleted. On the bench's refine run the packing
   * turns 15 blob rows of ~290 bytes and their index entries (6.7 KB a run) into one column
   * (bench/RESULTS.md). Four statements: the thread's archive lock, its row lock, one read, one
   * write. Returns how many checkpoints moved or were packed.
   *
   * Packing only while no run of the thread is pending or running: a run's puts store only the
   * blobs of the channels they change, the others being their parent's rows. The thread's row
   * lock orders this against run creation (which takes it too): a run created first is seen by
   * the read and nothing is packed; one created after waits for the commit, and its first put
   * stores every blob it refers to (LimitedPostgresSaver.writeCheckpoint). Puts outside a run
   * take the archive lock shared, so none commits between the read and the write.
   */
  async compact(c: pg.PoolClient, threadId: string): Promise<number> {
    // A run's compaction runs after its client has the result, so the thread's next run can end
    // and compact while it is still going: one at a time, or both would archive the same rows.
    // The locks are taken in statements of their own: a statement's snapshot is taken when it
    // starts, and the read must see a run created while this waited for the row lock.
    await lockThread(c, threadId);
    const { rowCount: threadRows } = await c.query(
      `SELECT 1 FROM ${this.threads} WHERE thread_id = $1 FOR UPDATE`,
      [threadId],
    );
    const { rows } = await c.query<{
      checkpoints:
        | {
            ns: string;
            id: string;
            parent: string | null;
            type: string | null;
            checkpoint: unknown;
            metadata: unknown;
            packed: string | null;
          }[]
        | null;
      blobs:
        | { ns: string; channel: string; version: string; type: string; blob: string | null }[]
        | null;
      writes:
        | {
            ns: string;
            id: string;
            task: string;
            idx: number;
            channel: string;
            type: string | null;
            blob: string;
          }[]
        | null;
      heads:
        | {
            ns: string;
            id: string;
            checkpoint: unknown;
            blobs: { channel: string; version: string; type: string; blob: string | null }[] | null;
          }[]
        | null;
    }>(
      `WITH heads AS (
         SELECT checkpoint_ns AS ns, MAX(checkpoint_id) AS latest FROM ${this.cp}
         WHERE thread_id = $1 GROUP BY checkpoint_ns
       ), older AS (
         SELECT c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type, c.checkpoint, c.metadata, c.packed
         FROM ${this.cp} c JOIN heads h ON c.checkpoint_ns = h.ns AND c.checkpoint_id < h.latest
         WHERE c.thread_id = $1 AND (c.checkpoint ->> 'v')::int >= 4
       ), packing AS (
         SELECT c.checkpoint_ns, c.checkpoint_id, c.checkpoint
         FROM ${this.cp} c JOIN heads h ON c.checkpoint_ns = h.ns AND c.checkpoint_id = h.latest
         WHERE c.thread_id = $1 AND c.packed IS NULL AND (c.checkpoint ->> 'v')::int >= 4 AND $2
           AND NOT EXISTS (SELECT 1 FROM ${this.runs} r
                            WHERE r.thread_id = $1 AND r.status IN ('pending', 'running'))
       )
       SELECT
         (SELECT json_agg(json_build_object('ns', o.checkpoint_ns, 'id', o.checkpoint_id,
             'parent', o.parent_checkpoint_id, 'type', o.type, 'checkpoint', o.checkpoint,
             'metadata', o.metadata, 'packed', encode(o.packed, 'base64')) ORDER BY o.checkpoint_ns, o.checkpoint_id) FROM older o) AS checkpoints,
         (SELECT json_agg(json_build_object('ns', b.checkpoint_ns, 'channel', b.channel,
             'version', b.version, 'type', b.type, 'blob', encode(b.blob, 'base64')))
            FROM (SELECT DISTINCT b.checkpoint_ns, b.channel, b.version, b.type, b.blob FROM older o
                  CROSS JOIN LATERAL jsonb_each_text(o.checkpoint -> 'channel_versions') v
                  JOIN ${this.bl} b ON b.thread_id = $1 AND b.checkpoint_ns = o.checkpoint_ns
                    AND b.channel = v.key AND b.version = v.value) b) AS blobs,
         (SELECT json_agg(json_build_object('ns', w.checkpoint_ns, 'id', w.checkpoint_id,
             'task', w.task_id, 'idx', w.idx, 'channel', w.channel, 'type', w.type,
             'blob', encode(w.blob, 'base64')) ORDER BY w.checkpoint_id, w.task_id, w.idx)
            FROM ${this.wr} w JOIN older o ON w.checkpoint_ns = o.checkpoint_ns
              AND w.checkpoint_id = o.checkpoint_id
           WHERE w.thread_id = $1) AS writes,
         (SELECT json_agg(json_build_object('ns', p.checkpoint_ns, 'id', p.checkpoint_id,
             'checkpoint', p.checkpoint, 'blobs', (SELECT json_agg(json_build_object('channel', b.channel, 'version', b.version,
                 'type', b.type, 'blob', encode(b.blob, 'base64')) ORDER BY b.channel)
                FROM jsonb_each_text(p.checkpoint -> 'channel_versions') v
                JOIN ${this.bl} b ON b.thread_id = $1 AND b.checkpoint_ns = p.checkpoint_ns
                 AND b.channel = v.key AND b.version = v.value))) FROM packing p) AS heads`,
      [threadId, this.pack && Boolean(threadRows)],
    );
    const found = rows[0];
    const heads = found?.heads ?? [];
    if (!found || (!found.checkpoints?.length && heads.length === 0)) return 0;
    const fromBase64 = (b: string | null) => (b === null ? null : Buffer.from(b, "base64"));
    const writesOf = new Map<string, ArchivedWrite[]>();
    for (const w of found.writes ?? []) {
      const key = pairKey(w.ns, w.id);
      const list = writesOf.get(key) ?? [];
      list.push({
        taskId: w.task,
        idx: w.idx,
        channel: w.channel,
        type: w.type,
        value: fromBase64(w.blob),
      });
      writesOf.set(key, list);
    }
    const older = found.checkpoints ?? [];
    const namespaces = [...new Set(older.map((r) => r.ns))];
    const segments: { ns: string; first: string; last: string; data: Buffer }[] = [];
    const moved: { ns: string; id: string }[] = [];
    // A checkpoint packed when it was the latest: its segment (itself, since packed checkpoints
    // hold it, and its blobs), decoded once.
    const packedOf = new Map(
      older
        .filter((r) => r.packed !== null)
        .map((r) => [pairKey(r.ns, r.id), decodeSegmentWithBlobs(fromBase64(r.packed)!)]),
    );
    for (const ns of namespaces) {
      const segment: ArchivedCheckpoint[] = older
        .filter((r) => r.ns === ns)
        .map((r) => ({
          id: r.id,
          parentId: r.parent,
          type: r.type,
          checkpoint:
            packedOf.get(pairKey(ns, r.id))?.rows[0]?.checkpoint ??
            Buffer.from(JSON.stringify(r.checkpoint)),
          metadata: Buffer.from(JSON.stringify(r.metadata)),
          writes: writesOf.get(pairKey(ns, r.id)) ?? [],
        }));
      const blobs: ArchivedBlob[] = (found.blobs ?? [])
        .filter((b) => b.ns === ns)
        .map((b) => ({
          channel: b.channel,
          version: b.version,
          type: b.type,
          blob: fromBase64(b.blob),
        }));
      // A checkpoint packed when it was the latest keeps its blobs in its row (each blob once).
      const stored = new Set(blobs.map((b) => pairKey(b.channel, b.version)));
      for (const r of older) {
        if (r.ns !== ns || r.packed === null) continue;
        for (const b of packedOf.get(pairKey(ns, r.id))!.blobs) {
          const key = pairKey(b.channel, b.version);
          if (!stored.has(key)) {
            stored.add(key);
            blobs.push(b);
          }
        }
      }
      segments.push({
        ns,
        first: segment[0]!.id,
        last: segment.at(-1)!.id,
        data: encodeSegment(segment, blobs),
      });
      for (const r of segment) moved.push({ ns, id: r.id });
    }
    // The statement sees the moved rows still, and the packed ones unpacked: both are left out
    // of the check by key. A blob an unpacked remaining checkpoint refers to stays.
    await c.query(
      `WITH moved AS (SELECT * FROM unnest($2::text[], $3::text[]) AS m(ns, id)),
       inserted AS (
         INSERT INTO ${this.table} (thread_id, checkpoint_ns, first_id, last_id, data)
         SELECT $1, * FROM unnest($4::text[], $5::text[], $6::text[], $7::bytea[])
       ), dropped AS (
         DELETE FROM ${this.cp} c USING moved m
         WHERE c.thread_id = $1 AND c.checkpoint_ns = m.ns AND c.checkpoint_id = m.id
       ), dropped_writes AS (
         DELETE FROM ${this.wr} w USING moved m
         WHERE w.thread_id = $1 AND w.checkpoint_ns = m.ns AND w.checkpoint_id = m.id
       ), packed AS (
         UPDATE ${this.cp} c SET packed = p.data,
             checkpoint = jsonb_build_object('v', c.checkpoint -> 'v', 'id', c.checkpoint -> 'id', 'ts', c.checkpoint -> 'ts')
           FROM unnest($8::text[], $9::text[], $10::bytea[]) AS p(ns, id, data)
          WHERE c.thread_id = $1 AND c.checkpoint_ns = p.ns AND c.checkpoint_id = p.id
          RETURNING c.checkpoint_ns, c.checkpoint_id
       )
       DELETE FROM ${this.bl} b WHERE b.thread_id = $1 AND NOT EXISTS (
         SELECT 1 FROM ${this.cp} c WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
           AND c.packed IS NULL AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
           AND NOT EXISTS (SELECT 1 FROM moved m WHERE m.ns = c.checkpoint_ns AND m.id = c.checkpoint_id)
           AND NOT EXISTS (SELECT 1 FROM packed p
                            WHERE p.checkpoint_ns = c.checkpoint_ns AND p.checkpoint_id = c.checkpoint_id))`,
      [
        threadId,
        moved.map((m) => m.ns),
        moved.map((m) => m.id),
        segments.map((g) => g.ns),
        segments.map((g) => g.first),
        segments.map((g) => g.last),
        segments.map((g) => g.data),
        heads.map((h) => h.ns),
        heads.map((h) => h.id),
        heads.map((h) =>
          encodeSegment(
            [
              {
                id: h.id,
                parentId: null,
                type: null,
                checkpoint: Buffer.from(JSON.stringify(h.checkpoint)),
                metadata: null,
                writes: [],
              },
            ],
            (h.blobs ?? []).map((b) => ({
              channel: b.channel,
              version: b.version,
              type: b.type,
              blob: fromBase64(b.blob),
            })),
          ),
        ),
      ],
    );
    return moved.length + heads.length;
  }

  private async load(db: Queryable, id: number, cache: Map<number, PgSegment>): Promise<PgSegment> {
    let seg = cache.get(id);
    if (!seg) {
      const { rows } = await db.query<{ data: Buffer }>(
        `SELECT data FROM ${this.table} WHERE id = $1`,
        [id],
      );
      const decoded = rows[0] ? decodeSegmentWithBlobs(rows[0].data) : { rows: [], blobs: [] };
      seg = {
        rows: decoded.rows,
        blobs: new Map(decoded.blobs.map((b) => [pairKey(b.channel, b.version), b])),
      };
      cache.set(id, seg);
    }
    return seg;
  }

  /** The archived checkpoint `id`, with its segment (for the blobs). */
  async find(
    db: Queryable,
    threadId: string,
    ns: string,
    id: string,
    cache: Map<number, PgSegment>,
  ): Promise<{ row: ArchivedCheckpoint; segment: PgSegment } | undefined> {
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM ${this.table} WHERE thread_id = $1 AND checkpoint_ns = $2
       AND last_id >= $3 AND first_id <= $3`,
      [threadId, ns, id],
    );
    for (const r of rows) {
      const segment = await this.load(db, Number(r.id), cache);
      const row = segment.rows.find((x) => x.id === id);
      if (row) return { row, segment };
    }
    return undefined;
  }

  /** Segments in scope, newest last id first, without their data (as the SQLite archive). */
  async segments(
    db: Queryable,
    threadId: string | undefined,
    ns: string | undefined,
    before: string | undefined,
  ): Promise<{ id: number; thread_id: string; checkpoint_ns: string; last_id: string }[]> {
    const where: string[] = [];
    const args: string[] = [];
    if (threadId !== undefined) where.push(`thread_id = $${args.push(threadId)}`);
    if (ns !== undefined) where.push(`checkpoint_ns = $${args.push(ns)}`);
    if (before !== undefined) where.push(`first_id < $${args.push(before)}`);
    const { rows } = await db.query<{
      id: string;
      thread_id: string;
      checkpoint_ns: string;
      last_id: string;
    }>(
      `SELECT id, thread_id, checkpoint_ns, last_id FROM ${this.table}${
        where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""
      } ORDER BY last_id DESC`,
      args,
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  segment(db: Queryable, id: number, cache: Map<number, PgSegment>): Promise<PgSegment> {
    return this.load(db, id, cache);
  }

  /**
   * Moves archived checkpoints of `threadId` from `from` on (all when null) back into the live
   * tables, with their writes and blobs, inside the caller's transaction (a rollback).
   */
  async restore(c: pg.PoolClient, threadId: string, from: string | null): Promise<void> {
    await lockThread(c, threadId);
    const { rows } = await c.query<{ id: string; checkpoint_ns: string; data: Buffer }>(
      `SELECT id, checkpoint_ns, data FROM ${this.table} WHERE thread_id = $1${
        from === null ? "" : " AND last_id >= $2"
      } FOR UPDATE`,
      from === null ? [threadId] : [threadId, from],
    );
    for (const seg of rows) {
      const { rows: all, blobs } = decodeSegmentWithBlobs(seg.data);
      const back = all.filter((r) => from === null || r.id >= from);
      const keep = all.filter((r) => !(from === null || r.id >= from));
      for (const r of back) {
        await c.query(
          `INSERT INTO ${this.cp} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) ON CONFLICT DO NOTHING`,
          [
            threadId,
            seg.checkpoint_ns,
            r.id,
            r.parentId,
            r.type,
            Buffer.from(r.checkpoint).toString("utf8"),
            r.metadata === null ? "{}" : Buffer.from(r.metadata).toString("utf8"),
          ],
        );
        for (const w of r.writes) {
          await c.query(
            `INSERT INTO ${this.wr} (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
            [threadId, seg.checkpoint_ns, r.id, w.taskId, w.idx, w.channel, w.type, w.value],
          );
        }
      }
      for (const b of blobs) {
        await c.query(
          `INSERT INTO ${this.bl} (thread_id, checkpoint_ns, channel, version, type, blob)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [threadId, seg.checkpoint_ns, b.channel, b.version, b.type, b.blob],
        );
      }
      await c.query(`DELETE FROM ${this.table} WHERE id = $1`, [seg.id]);
      if (keep.length > 0) {
        const versions = new Set<string>();
        for (const r of keep) {
          const cp = JSON.parse(Buffer.from(r.checkpoint).toString("utf8")) as {
            channel_versions?: Record<string, string>;
          };
          for (const [k, v] of Object.entries(cp.channel_versions ?? {})) {
            versions.add(pairKey(k, String(v)));
          }
        }
        await c.query(
          `INSERT INTO ${this.table} (thread_id, checkpoint_ns, first_id, last_id, data)
           VALUES ($1, $2, $3, $4, $5)`,
          [
            threadId,
            seg.checkpoint_ns,
            keep[0]!.id,
            keep.at(-1)!.id,
            encodeSegment(
              keep,
              blobs.filter((b) => versions.has(pairKey(b.channel, b.version))),
            ),
          ],
        );
      }
    }
    // Restored blobs that no restored checkpoint needs stay until dropUnreferencedBlobs.
  }

  copy(c: Queryable, from: string, to: string) {
    return c.query(
      `INSERT INTO ${this.table} (thread_id, checkpoint_ns, first_id, last_id, data)
       SELECT $1, checkpoint_ns, first_id, last_id, data FROM ${this.table} WHERE thread_id = $2`,
      [to, from],
    );
  }

  deleteThread(c: Queryable, threadId: string) {
    return c.query(`DELETE FROM ${this.table} WHERE thread_id = $1`, [threadId]);
  }
}
