// The checkpoint saver on Postgres: @langchain/langgraph-checkpoint-postgres's PostgresSaver with
// what the SQLite saver (core/checkpointer.ts) adds on the server, so both backends behave alike:
// - the state limits (REFINERY_MAX_CHECKPOINT_BYTES on the whole serialized state of a
//   checkpoint, or one step's writes; REFINERY_MAX_THREAD_BYTES on what a thread stores: its
//   checkpoints, channel blobs and writes, summed from the tables when this saver did not write
//   the thread's previous checkpoint itself);
// - the run's metadata in each checkpoint's metadata (runMetadata);
// - fences that drop a rolled-back run's late writes (server/run-runner.ts);
// - channel versions that never repeat. The library's versions are integers and it keeps the
//   first blob stored for a (channel, version): after a rollback or a fork the next run writes
//   the same versions again, and reading its checkpoints would return the old run's values. As
//   LangGraph's Python PostgresSaver does, a version is "<counter, 32 digits>.<random>".
// - packed checkpoints: when a run has ended, its thread's latest checkpoint holds its channel
//   blobs itself, deflated in one column (`packed`, see PostgresCheckpointArchive.compact), instead
//   of one checkpoint_blobs row per channel, with the checkpoint itself. The library's SELECT
//   returns them as one pseudo blob, which _loadCheckpoint expands; every read (getTuple, list,
//   archived tuples) goes through it.
import { randomBytes } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointTuple,
  PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { WRITES_IDX_MAP } from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import type pg from "pg";
import type { TokenUsage } from "../../usage.ts";
import { createPostgresAttemptJournal } from "./attempt-journal.ts";
import type { ArchivedCheckpoint } from "../../checkpoint-archive.ts";
import { decodeSegmentWithBlobs } from "../../checkpoint-archive.ts";
import {
  lockThread,
  pairKey,
  PostgresCheckpointArchive,
  PACKED_TYPE,
  type PgSegment,
} from "./archive.ts";
import { inTransaction, prepared } from "./pool.ts";
import { ATTEMPT_JOURNAL, type AttemptJournal } from "../../models/attempt-journal.ts";
import {
  checkpointTooLarge,
  runFenceOf,
  StaleRunError,
  DEFAULT_STATE_LIMITS,
  runCheckpointMetadata,
  threadTooLarge,
  type StateLimits,
} from "../../checkpointer.ts";

export class LimitedPostgresSaver extends PostgresSaver {
  /** Bytes per thread and the last checkpoint id this saver wrote per namespace; LRU order. */
  private readonly usage = new Map<string, { bytes: number; heads: Map<string, string> }>();
  private readonly fenced = new Set<string>();
  private readonly tables: { checkpoints: string; blobs: string; writes: string };
  /** Writes waiting for their thread's next checkpoint, or for the next turn of the event loop. */
  private queued: QueuedWrites[] = [];
  private flushScheduled = false;
  /** Model attempts' tokens waiting for their thread's next checkpoint, or for a timer. */
  private ends: QueuedEnd[] = [];
  private endsTimer?: NodeJS.Timeout;

  constructor(
    private readonly db: pg.Pool,
    private readonly schema: string,
    private readonly limits: StateLimits = DEFAULT_STATE_LIMITS,
    private readonly runMetadata = false,
  ) {
    super(preparingReads(db), undefined, { schema });
    const S = `"${schema}"`;
    this.tables = {
      checkpoints: `${S}.checkpoints`,
      blobs: `${S}.checkpoint_blobs`,
      writes: `${S}.checkpoint_writes`,
    };
    // The library's one SELECT (getTuple and list): a packed checkpoint's blobs come from its
    // own row (private in the library's types, read and replaced once here).
    const statements = this as unknown as { SQL_STATEMENTS: { SELECT_SQL: string } };
    statements.SQL_STATEMENTS = {
      ...statements.SQL_STATEMENTS,
      SELECT_SQL: readingPacked(statements.SQL_STATEMENTS.SELECT_SQL),
    };
  }

  /** The library's tables, then the `packed` column (once: ALTER TABLE locks the table). */
  override async setup(): Promise<void> {
    await super.setup();
    const { rowCount } = await this.db.query(
      `SELECT 1 FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'checkpoints' AND column_name = 'packed'`,
      [this.schema],
    );
    if (!rowCount) {
      // Already deflated (PostgresCheckpointArchive.compact): Postgres need not compress it again.
      await this.db.query(
        `ALTER TABLE ${this.tables.checkpoints} ADD COLUMN IF NOT EXISTS packed BYTEA;
         ALTER TABLE ${this.tables.checkpoints} ALTER COLUMN packed SET STORAGE EXTERNAL`,
      );
    }
  }

  /**
   * The library's loader for a packed checkpoint: the pseudo blob holds the checkpoint itself
   * (its JSONB column keeps only `v`, `id` and `ts`) and its blobs. Checkpoints packed before the
   * checkpoint went in too hold only blobs, and keep the whole checkpoint in their column.
   */
  protected override async _loadCheckpoint(
    checkpoint: Omit<Checkpoint, "pending_sends" | "channel_values">,
    channelValues: [Uint8Array, Uint8Array, Uint8Array][],
  ): Promise<Checkpoint> {
    const packed = channelValues?.find(isPackedBlob);
    if (!packed) return super._loadCheckpoint(checkpoint, channelValues);
    const { rows, blobs } = decodeSegmentWithBlobs(packed[2]);
    const own = rows[0]
      ? (JSON.parse(Buffer.from(rows[0].checkpoint).toString("utf8")) as typeof checkpoint)
      : checkpoint;
    const expanded = channelValues.filter((v) => v !== packed);
    for (const b of blobs) {
      expanded.push([Buffer.from(b.channel), Buffer.from(b.type), b.blob ?? new Uint8Array()]);
    }
    return super._loadCheckpoint(own, expanded);
  }

  // The library types versions as numbers; LangGraph compares them with `>`, which orders these
  // zero-padded strings as it orders the counters.
  override getNextVersion(current: number | undefined): number {
    const raw = current as number | string | undefined;
    const counter = raw === undefined ? 0 : typeof raw === "number" ? raw : parseInt(raw, 10);
    return `${String(counter + 1).padStart(32, "0")}.${randomBytes(8).toString("hex")}` as unknown as number;
  }

  private archiveStore?: PostgresCheckpointArchive;
  /**
   * The checkpoint this saver put last per thread and namespace, with the run attempt that put
   * it (`<run id>\u0000<attempt>\u0000<checkpoint id>`); LRU order. Only a later put of the same
   * attempt relies on its blobs being stored: between runs the checkpoint may have been packed.
   */
  private readonly lastPut = new Map<string, string>();

  /** Finished runs' checkpoints (core/storage/postgres/archive.ts). */
  private archive(): PostgresCheckpointArchive {
    return (this.archiveStore ??= new PostgresCheckpointArchive(this.schema));
  }

  /** A tuple as the library's getTuple builds one, from an archived checkpoint and its blobs. */
  private async archivedTuple(
    threadId: string,
    ns: string,
    row: ArchivedCheckpoint,
    segment: PgSegment,
  ): Promise<CheckpointTuple> {
    const text = (b: Uint8Array | null) => (b === null ? "" : Buffer.from(b).toString("utf8"));
    const bytes = (t: string) => Buffer.from(t, "utf8");
    const checkpoint = JSON.parse(text(row.checkpoint)) as Omit<Checkpoint, "channel_values">;
    const channelValues: [Uint8Array, Uint8Array, Uint8Array][] = [];
    for (const [channel, version] of Object.entries(checkpoint.channel_versions ?? {})) {
      const blob = segment.blobs.get(pairKey(channel, String(version)));
      if (blob)
        channelValues.push([bytes(channel), bytes(blob.type), blob.blob ?? new Uint8Array()]);
    }
    const metadata = row.metadata === null ? {} : (JSON.parse(text(row.metadata)) as object);
    return {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: row.id } },
      checkpoint: await this._loadCheckpoint(checkpoint, channelValues),
      metadata: (await this._loadMetadata(
        metadata as Record<string, unknown>,
      )) as CheckpointMetadata,
      parentConfig: row.parentId
        ? { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: row.parentId } }
        : undefined,
      pendingWrites: await this._loadWrites(
        row.writes.map((w) => [
          bytes(w.taskId),
          bytes(w.channel),
          bytes(w.type ?? ""),
          w.value ?? new Uint8Array(),
        ]),
      ),
    };
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const live = await super.getTuple(config);
    if (live) return live;
    // Not a live row: an archived checkpoint (history, time travel, a fork). A thread's latest
    // checkpoint of each namespace is never archived, so a read of the latest (every run's
    // first, on a new thread too) costs no second round trip.
    const { thread_id, checkpoint_ns, checkpoint_id } = config.configurable ?? {};
    if (typeof thread_id !== "string" || !thread_id || !checkpoint_id) return undefined;
    const ns = (checkpoint_ns as string | undefined) ?? "";
    const found = await this.archive().find(
      this.db,
      thread_id,
      ns,
      checkpoint_id as string,
      new Map(),
    );
    return found && this.archivedTuple(thread_id, ns, found.row, found.segment);
  }

  override async *list(
    config: RunnableConfig,
    options?: CheckpointListOptions,
  ): AsyncGenerator<CheckpointTuple> {
    const { filter, before, limit } = options ?? {};
    const threadId = (config.configurable?.thread_id as string | undefined) || undefined;
    const ns = config.configurable?.checkpoint_ns as string | undefined | null;
    const onlyId = (config.configurable?.checkpoint_id as string | undefined) || undefined;
    const beforeId = before?.configurable?.checkpoint_id as string | undefined;
    const archive = this.archive();
    // Live rows first (the library filters and limits them in SQL), then archived ones: a
    // compaction committing in between only moves rows from the first into the second, so every
    // row is found at least once (duplicates are dropped below). At most `max` of each kind can
    // be among the first `max`.
    const live: CheckpointTuple[] = [];
    for await (const t of super.list(config, options)) live.push(t);
    const segments = await archive.segments(this.db, threadId, ns ?? undefined, beforeId);
    if (segments.length === 0) {
      yield* live;
      return;
    }
    const seen = new Set(
      live.map(
        (t) => `${String(t.config.configurable?.checkpoint_ns ?? "")}\u0000${t.checkpoint.id}`,
      ),
    );
    const max = limit ? Number.parseInt(String(limit), 10) : 0;
    // As the library sends it to Postgres: JSON, so keys whose value is undefined drop out.
    const defined = Object.fromEntries(
      Object.entries(filter ?? {}).filter(([, v]) => v !== undefined),
    );
    const wanted = Object.keys(defined).length > 0 ? defined : undefined;
    const cache = new Map<number, PgSegment>();
    const archived: {
      threadId: string;
      ns: string;
      row: ArchivedCheckpoint;
      segment: PgSegment;
    }[] = [];
    for (const seg of segments) {
      if (max > 0 && archived.filter((a) => a.row.id > seg.last_id).length >= max) break;
      const segment = await archive.segment(this.db, seg.id, cache);
      for (const row of segment.rows) {
        if (beforeId !== undefined && !(row.id < beforeId)) continue;
        if (onlyId !== undefined && row.id !== onlyId) continue;
        if (seen.has(`${seg.checkpoint_ns}\u0000${row.id}`)) continue;
        if (wanted) {
          const metadata =
            row.metadata === null ? {} : JSON.parse(Buffer.from(row.metadata).toString("utf8"));
          if (!jsonbContains(metadata, wanted)) continue;
        }
        archived.push({ threadId: seg.thread_id, ns: seg.checkpoint_ns, row, segment });
      }
    }
    const entries = [
      ...live.map((tuple) => ({ id: tuple.checkpoint.id, tuple })),
      ...archived.map((a) => ({ id: a.row.id, archived: a })),
    ].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    let n = 0;
    for (const e of entries) {
      if ("tuple" in e) yield e.tuple;
      else
        yield await this.archivedTuple(
          e.archived.threadId,
          e.archived.ns,
          e.archived.row,
          e.archived.segment,
        );
      if (max > 0 && ++n >= max) return;
    }
  }

  /** Drops every write to `threadId` until unfence() (see PreparedSqliteSaver.fence). */
  fence(threadId: string): void {
    this.fenced.add(threadId);
    if (this.fenced.size > 10_000) this.fenced.delete(this.fenced.values().next().value as string);
  }

  unfence(threadId: string): void {
    this.fenced.delete(threadId);
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const configurable = config.configurable ?? {};
    const threadId = configurable.thread_id as string;
    const ns = (configurable.checkpoint_ns as string | undefined) ?? "";
    const full = this.runMetadata ? runCheckpointMetadata(config, metadata) : metadata;
    if (this.fenced.has(threadId)) {
      return {
        configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id },
      };
    }
    const blobs = await this._dumpBlobs(
      threadId,
      ns,
      checkpoint.channel_values,
      checkpoint.channel_versions,
    );
    const usage = await this.chargeCheckpoint(config, checkpoint, full, newVersions, blobs);
    try {
      await this.writeCheckpoint(config, checkpoint, full, newVersions, blobs);
      usage?.usage.heads.set(ns, checkpoint.id);
      return {
        configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id },
      };
    } catch (err) {
      if (usage) usage.usage.bytes -= usage.bytes;
      throw err;
    }
  }

  /**
   * The library's put in one statement (one round trip instead of BEGIN, a query per changed
   * channel, the checkpoint and COMMIT): the blobs of changed channels go in a data-modifying
   * CTE beside the checkpoint's upsert, atomic as one statement is. `whole` is the state's blobs
   * as chargeCheckpoint dumped them; a changed channel's row is reused when its version matches.
   */
  private async writeCheckpoint(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
    whole: BlobRow[],
  ): Promise<void> {
    const configurable = config.configurable ?? {};
    const threadId = configurable.thread_id as string;
    const ns = (configurable.checkpoint_ns as string | undefined) ?? "";
    const changed = whole.filter(
      (row) => row[2] in newVersions && String(newVersions[row[2]]) === row[3],
    );
    // A checkpoint that follows the one this saver put last for the thread needs only the blobs
    // of the channels that changed: the others are the parent's, still stored. Any other parent
    // (a fork from an earlier checkpoint, a thread another process wrote last) may be archived
    // and its blobs with it (core/storage/postgres/archive.ts): store every blob the checkpoint
    // refers to, the ones already there left as they are.
    const head = `${threadId}\u0000${ns}`;
    const parent = configurable.checkpoint_id as string | undefined;
    // A server run's checkpoint is written only while the run is still this attempt's.
    const fence = this.runMetadata ? runFenceOf(config) : undefined;
    // Within one run attempt the parent's blobs are stored: a thread is packed only while no run
    // of it is pending or running (PostgresCheckpointArchive.compact). A run's first checkpoint, and
    // any outside a run, stores every blob it refers to (those still there are left as they are).
    const putter = fence ? `${fence.runId}\u0000${fence.attempt}\u0000` : undefined;
    const follows =
      parent === undefined ||
      (putter !== undefined && this.lastPut.get(head) === `${putter}${parent}`);
    const rows = !follows
      ? whole
      : changed.length === Object.keys(newVersions).length
        ? changed
        : await this._dumpBlobs(threadId, ns, checkpoint.channel_values, newVersions);
    const { checkpoints, blobs } = this.tables;
    const params: unknown[] = [
      threadId,
      ns,
      checkpoint.id,
      configurable.checkpoint_id as string | undefined,
      this._dumpCheckpoint(checkpoint),
      await this._dumpMetadata(metadata),
      rows.map((row) => row[2]),
      rows.map((row) => row[3]),
      rows.map((row) => row[4]),
      rows.map((row) => row[5] ?? null),
    ];
    // The thread's writes still queued (its last step's tasks) go in the same statement: one
    // round trip for the step instead of two, and committed no later than they would have been.
    // Fenced (a rollback) while this put was being prepared: nothing more for this thread.
    if (this.fenced.has(threadId)) return;
    const joined = this.takeQueued(threadId);
    // A worker that was frozen past its lease, and whose run another worker took over
    // (attempt + 1), writes nothing when it wakes, not even one more step (the fence: every
    // insert selects from it, so an empty fence inserts nothing).
    let fenceCte = "";
    if (fence) {
      params.push(fence.runId, fence.attempt);
      // FOR KEY SHARE: a rollback deletes the run's row before it restores the checkpoints, and
      // that delete now waits for this statement to commit (or this statement waits for the
      // delete and then finds no row); without the lock a put already running could commit its
      // checkpoint after the restore. Lease renewals and status changes do not conflict with it.
      fenceCte = `fence AS (
         SELECT 1 FROM "${this.schema}".refinery_runs
          WHERE run_id = $${params.length - 1} AND attempt = $${params.length} AND status = 'running'
          FOR KEY SHARE
       ), `;
    }
    const fenced = fence ? ", fence" : "";
    const ends = this.takeEnds(threadId);
    const endedCte = this.endsCte(ends, params, fenced);
    const writeCtes = [true, false]
      .map((upsert) => {
        const batch = joined.filter((q) => q.upsert === upsert).flatMap((q) => q.rows);
        return batch.length
          ? `, ${this.writesCte(upsert ? "upserted" : "inserted", batch, params, fenced)}`
          : "";
      })
      .join("");
    let written: number;
    try {
      const result = await this.guarded(
        threadId,
        fence === undefined,
        prepared(
          `WITH ${fenceCte}stored_blobs AS (
           INSERT INTO ${blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
           SELECT $1, $2, b.channel, b.version, b.type, b.blob
             FROM unnest($7::text[], $8::text[], $9::text[], $10::bytea[]) AS b(channel, version, type, blob)${fenced}
           ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
         )${writeCtes}${endedCte}
         INSERT INTO ${checkpoints}
           (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
         SELECT $1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb${fence ? " FROM fence" : ""}
         ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
         DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata, packed = NULL
         RETURNING 1`,
          params,
        ),
      );
      written = result.rowCount ?? 0;
    } catch (err) {
      for (const q of joined) q.reject(err);
      throw err;
    } finally {
      for (const e of ends) e.resolve();
    }
    if (written === 0 && fence) {
      const stale = new StaleRunError(fence.runId, fence.attempt);
      for (const q of joined) q.reject(stale);
      throw stale;
    }
    for (const q of joined) q.resolve();
    this.lastPut.delete(head);
    if (putter !== undefined) this.lastPut.set(head, `${putter}${checkpoint.id}`);
    if (this.lastPut.size > 4096) this.lastPut.delete(this.lastPut.keys().next().value as string);
  }

  /**
   * Sends a checkpoint's statement. One outside a run (a state update, a fork) shares the
   * thread's archive lock with other such puts, in a transaction: packing the thread (which
   * holds the lock alone) deletes blobs no unpacked checkpoint refers to, and must not run
   * between this statement finding a blob already stored and its commit. A run's puts need no
   * lock: a thread with a run pending or running is never packed.
   */
  private async guarded(
    threadId: string,
    outsideRun: boolean,
    query: pg.QueryConfig,
  ): Promise<pg.QueryResult> {
    if (!outsideRun) return this.db.query(query);
    return inTransaction(this.db, async (client) => {
      await lockThread(client, threadId, true);
      return client.query(query);
    });
  }

  /**
   * A data-modifying CTE inserting `rows` (of any tasks and checkpoints), with its arrays
   * appended to `params`: as the library's putWrites, writes to special channels (WRITES_IDX_MAP:
   * errors, interrupts, ...) replace a previous write with their index, others keep the first.
   */
  private writesCte(name: string, rows: WriteRow[], params: unknown[], fenced: string): string {
    const at = params.length;
    for (let col = 0; col < 8; col++) params.push(rows.map((row) => row[col] ?? null));
    const p = (i: number) => `$${at + i + 1}`;
    return `${name} AS (
       INSERT INTO ${this.tables.writes}
         (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
       SELECT u.* FROM unnest(${p(0)}::text[], ${p(1)}::text[], ${p(2)}::text[], ${p(3)}::text[],
         ${p(4)}::integer[], ${p(5)}::text[], ${p(6)}::text[], ${p(7)}::bytea[]) AS u${fenced}
       ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) ${
         name === "upserted"
           ? "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
           : "DO NOTHING"
       }
     )`;
  }

  /**
   * Queues a task's writes: they go with the thread's next checkpoint when LangGraph puts it in
   * this turn of the event loop (it does, right after a step's tasks finish), else alone at the
   * next turn. Resolves once they are committed either way, so LangGraph's "sync" durability
   * still waits for them before the next step.
   */
  private queueWrites(threadId: string, rows: WriteRow[], upsert: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ threadId, rows, upsert, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        for (const q of this.queued.splice(0)) {
          // A thread fenced meanwhile (a rollback) takes no more writes, as putWrites refuses.
          if (this.fenced.has(q.threadId)) q.resolve();
          else this.insertWrites(q.rows, q.upsert).then(q.resolve, q.reject);
        }
      });
    });
  }

  /** Queues an attempt's tokens (see createPostgresAttemptJournal); resolves once written. */
  private deferEnd(threadId: string, row: bigint, usage: Partial<TokenUsage>): Promise<void> {
    return new Promise<void>((resolve) => {
      this.ends.push({ threadId, row, usage, resolve });
      this.endsTimer ??= setTimeout(() => {
        this.endsTimer = undefined;
        const all = this.ends.splice(0);
        // Checkpoint statements took them all meanwhile (the usual case): nothing to send.
        if (all.length === 0) return;
        const params: unknown[] = [];
        const cte = this.endsCte(all, params, "");
        // Journal bookkeeping never fails anything: a lost end loses only a cut attempt's tokens.
        this.db
          .query(prepared(`WITH ${cte.slice(2)} SELECT 1`, params))
          .catch(() => undefined)
          .finally(() => all.forEach((e) => e.resolve()));
      }, 100);
      this.endsTimer.unref?.();
    });
  }

  private takeEnds(threadId: string): QueuedEnd[] {
    // Resolved once the statement that carries them settles (a failed checkpoint loses them:
    // the step runs again and starts its own rows).
    const [mine, rest] = partitionByThread(this.ends, threadId);
    this.ends = rest;
    if (rest.length === 0 && this.endsTimer) {
      clearTimeout(this.endsTimer);
      this.endsTimer = undefined;
    }
    return mine;
  }

  /** `, ended AS (UPDATE ...)` writing `ends`' tokens, its arrays appended to `params`. */
  private endsCte(ends: QueuedEnd[], params: unknown[], fenced: string): string {
    if (ends.length === 0) return "";
    const at = params.length;
    params.push(
      ends.map((e) => String(e.row)),
      ends.map((e) => e.usage.promptTokens ?? 0),
      ends.map((e) => e.usage.completionTokens ?? 0),
      ends.map((e) => e.usage.totalTokens ?? 0),
      ends.map((e) => e.usage.estimatedTokens ?? 0),
    );
    const p = (i: number) => `$${at + i + 1}`;
    return `, ended AS (
       UPDATE "${this.schema}".refinery_model_attempts AS j
          SET prompt_tokens = u.p, completion_tokens = u.c, total_tokens = u.t, estimated_tokens = u.e
         FROM unnest(${p(0)}::bigint[], ${p(1)}::bigint[], ${p(2)}::bigint[], ${p(3)}::bigint[],
           ${p(4)}::bigint[]) AS u(id, p, c, t, e)${fenced}
        WHERE j.id = u.id
     )`;
  }

  private takeQueued(threadId: string): QueuedWrites[] {
    const [mine, rest] = partitionByThread(this.queued, threadId);
    if (mine.length === 0) return mine;
    this.queued = rest;
    // Two batches of one task with the same index (one special channel written twice) cannot
    // share an INSERT ... ON CONFLICT DO UPDATE: those stay queued, for their own statements.
    const keys = new Set<string>();
    const clash = mine
      .flatMap((q) => q.rows)
      .some((row) => {
        const key = `${row[1]}\u0000${row[2]}\u0000${row[3]}\u0000${row[4]}`;
        return keys.has(key) || !keys.add(key);
      });
    if (!clash) return mine;
    this.queued.push(...mine);
    return [];
  }

  override async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
  ): Promise<void> {
    const configurable = config.configurable ?? {};
    const threadId = configurable.thread_id as string;
    if (this.fenced.has(threadId)) return;
    const ns = (configurable.checkpoint_ns as string | undefined) ?? "";
    const checkpointId = configurable.checkpoint_id as string;
    const rows = await this._dumpWrites(threadId, ns, checkpointId, taskId, writes);
    let usage: { usage: Usage; bytes: number } | undefined;
    if (this.limits.maxCheckpointBytes > 0 || this.limits.maxThreadBytes > 0) {
      const bytes = rows.reduce((sum, row) => sum + row[7].length, 0);
      usage = await this.charge(threadId, ns, checkpointId, bytes, "writes");
    }
    try {
      // Two writes of one call with the same index (one special channel twice) cannot be one
      // INSERT ... ON CONFLICT DO UPDATE: the library's statement per write handles them.
      if (new Set(rows.map((row) => row[4])).size !== rows.length) {
        await super.putWrites(config, writes, taskId);
      } else {
        await this.queueWrites(
          threadId,
          rows,
          writes.every((w) => w[0] in WRITES_IDX_MAP),
        );
      }
    } catch (err) {
      if (usage) usage.usage.bytes -= usage.bytes;
      throw err;
    }
  }

  /**
   * The library's putWrites in one statement: as it does, writes to special channels
   * (WRITES_IDX_MAP: errors, interrupts, ...) replace a previous write with their index, others
   * keep the first one stored.
   */
  private async insertWrites(rows: WriteRow[], upsert: boolean): Promise<void> {
    const first = rows[0];
    if (!first) return;
    await this.db.query(
      prepared(
        `INSERT INTO ${this.tables.writes}
         (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
       SELECT $1, $2, $3, $4, w.idx, w.channel, w.type, w.blob
         FROM unnest($5::integer[], $6::text[], $7::text[], $8::bytea[]) AS w(idx, channel, type, blob)
       ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) ${
         upsert
           ? "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
           : "DO NOTHING"
       }`,
        [
          first[0],
          first[1],
          first[2],
          first[3],
          rows.map((row) => row[4]),
          rows.map((row) => row[5]),
          rows.map((row) => row[6]),
          rows.map((row) => row[7]),
        ],
      ),
    );
  }

  override async deleteThread(threadId: string): Promise<void> {
    this.usage.delete(threadId);
    await this[ATTEMPT_JOURNAL]().clear(threadId);
    await this.archive().deleteThread(this.db, threadId);
    await super.deleteThread(threadId);
  }

  private journal?: AttemptJournal;

  /** The journal of model attempts in this schema (see core/models/attempt-journal.ts). */
  [ATTEMPT_JOURNAL](): AttemptJournal {
    this.journal ??= createPostgresAttemptJournal(this.db, this.schema, (threadId, row, usage) =>
      this.deferEnd(threadId, row, usage),
    );
    return this.journal;
  }

  /** Forgets what this saver counted for a thread (its rows changed behind it: a rollback). */
  forget(threadId: string): void {
    this.usage.delete(threadId);
  }

  /** Another pool compacted `threadId` (CompactionAware): count its bytes again. */
  compacted(threadId: string): void {
    this.forget(threadId);
  }

  private async chargeCheckpoint(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
    blobs: BlobRow[],
  ): Promise<{ usage: Usage; bytes: number } | undefined> {
    const { maxCheckpointBytes, maxThreadBytes } = this.limits;
    if (maxCheckpointBytes <= 0 && maxThreadBytes <= 0) return undefined;
    const configurable = config.configurable ?? {};
    const threadId = configurable.thread_id as string;
    const ns = (configurable.checkpoint_ns as string | undefined) ?? "";
    // The whole state counts against the checkpoint limit (as the SQLite saver stores it); only
    // the blobs of channels that changed are stored, and count against the thread's total.
    const head =
      JSON.stringify(this._dumpCheckpoint(checkpoint)).length +
      JSON.stringify(await this._dumpMetadata(metadata)).length;
    let whole = head;
    let stored = head;
    for (const row of blobs) {
      const size = row[5]?.length ?? 0;
      whole += size;
      if (row[2] in newVersions) stored += size;
    }
    if (maxCheckpointBytes > 0 && whole > maxCheckpointBytes)
      throw checkpointTooLarge(threadId, whole, maxCheckpointBytes, "checkpoint");
    return this.charge(
      threadId,
      ns,
      configurable.checkpoint_id as string | undefined,
      stored,
      "checkpoint",
    );
  }

  private async charge(
    threadId: string,
    ns: string,
    head: string | undefined,
    bytes: number,
    what: "checkpoint" | "writes",
  ): Promise<{ usage: Usage; bytes: number } | undefined> {
    const { maxCheckpointBytes, maxThreadBytes } = this.limits;
    if (what === "writes" && maxCheckpointBytes > 0 && bytes > maxCheckpointBytes)
      throw checkpointTooLarge(threadId, bytes, maxCheckpointBytes, what);
    if (maxThreadBytes <= 0) return undefined;
    let usage = this.usage.get(threadId);
    if (!usage || usage.heads.get(ns) !== head) {
      usage = { bytes: await this.storedBytes(threadId), heads: new Map() };
      if (head !== undefined) usage.heads.set(ns, head);
    }
    this.usage.delete(threadId);
    this.usage.set(threadId, usage);
    if (this.usage.size > 4096) this.usage.delete(this.usage.keys().next().value as string);
    if (usage.bytes + bytes > maxThreadBytes)
      throw threadTooLarge(threadId, usage.bytes + bytes, maxThreadBytes);
    usage.bytes += bytes;
    return { usage, bytes };
  }

  /** Bytes of a thread's checkpoints, blobs and writes as stored. */
  private async storedBytes(threadId: string): Promise<number> {
    const { checkpoints, blobs, writes } = this.tables;
    const { rows } = await this.db.query<{ bytes: string }>(
      prepared(
        `SELECT
         (SELECT COALESCE(SUM(octet_length(checkpoint::text) + octet_length(metadata::text)
                   + COALESCE(octet_length(packed), 0)), 0)
            FROM ${checkpoints} WHERE thread_id = $1)
       + (SELECT COALESCE(SUM(octet_length(blob)), 0) FROM ${blobs} WHERE thread_id = $1)
       + (SELECT COALESCE(SUM(octet_length(blob)), 0) FROM ${writes} WHERE thread_id = $1)
       + (SELECT COALESCE(SUM(octet_length(data)), 0) FROM ${this.archive().table} WHERE thread_id = $1)
       AS bytes`,
        [threadId],
      ),
    );
    return Number(rows[0]?.bytes ?? 0);
  }
}

type Usage = { bytes: number; heads: Map<string, string> };

/** Postgres's `a @> b` on JSON values, as the library's metadata filter applies it in SQL. */
export function jsonbContains(a: unknown, b: unknown): boolean {
  if (Array.isArray(b)) {
    if (!Array.isArray(a)) return false;
    return b.every((x) => a.some((y) => jsonbContains(y, x)));
  }
  if (b !== null && typeof b === "object") {
    if (a === null || typeof a !== "object" || Array.isArray(a)) return false;
    const o = a as Record<string, unknown>;
    return Object.entries(b as Record<string, unknown>).every(
      ([k, v]) => k in o && jsonbContains(o[k], v),
    );
  }
  return a === b;
}
/** `items` of `threadId`, and the others (the same array when there are none of the thread's). */
function partitionByThread<T extends { threadId: string }>(
  items: T[],
  threadId: string,
): [T[], T[]] {
  if (!items.some((i) => i.threadId === threadId)) return [[], items];
  return [
    items.filter((i) => i.threadId === threadId),
    items.filter((i) => i.threadId !== threadId),
  ];
}

interface QueuedEnd {
  threadId: string;
  row: bigint;
  usage: Partial<TokenUsage>;
  resolve(): void;
}
interface QueuedWrites {
  threadId: string;
  rows: WriteRow[];
  upsert: boolean;
  resolve(): void;
  reject(err: unknown): void;
}
type BlobRow = Awaited<ReturnType<PostgresSaver["_dumpBlobs"]>>[number];
type WriteRow = Awaited<ReturnType<PostgresSaver["_dumpWrites"]>>[number];

/** The two WHERE clauses the library's getTuple ends its one query with (by id, and latest). */
const TUPLE_READS = [
  "WHERE thread_id = $1 AND checkpoint_ns = $2 AND checkpoint_id = $3",
  "WHERE thread_id = $1 AND checkpoint_ns = $2 ORDER BY checkpoint_id DESC LIMIT 1",
];

/**
 * `pool` as the library sees it: its getTuple query, which every run sends at least twice and
 * which Postgres otherwise parses and plans each time (a join of checkpoints with their blobs and
 * writes), goes as a prepared statement (see `prepared`). Everything else is the pool's own.
 */
function preparingReads(pool: pg.Pool): pg.Pool {
  const query = (text: unknown, values?: unknown) =>
    typeof text === "string" && Array.isArray(values) && TUPLE_READS.some((w) => text.endsWith(w))
      ? pool.query(prepared(text, values))
      : (pool.query as (t: unknown, v?: unknown) => Promise<pg.QueryResult>)(text, values);
  // The pool's own methods, bound once (the library calls connect() for every transaction).
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === "query") return query;
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      let fn = bound.get(prop);
      if (fn === undefined) {
        fn = (value as (...a: unknown[]) => unknown).bind(target);
        bound.set(prop, fn);
      }
      return fn;
    },
  });
}

const PACKED_TYPE_BYTES = Buffer.from(PACKED_TYPE);

/** Whether a [channel, type, blob] triple is the pseudo blob of a packed checkpoint. */
function isPackedBlob([, type]: [Uint8Array, Uint8Array, Uint8Array]): boolean {
  return type.length === PACKED_TYPE_BYTES.length && PACKED_TYPE_BYTES.equals(type);
}

/**
 * The library's SELECT with its channel_values: a packed checkpoint's one pseudo blob (type
 * PACKED_TYPE, the packed column) instead of the join with checkpoint_blobs.
 */
export function readingPacked(select: string): string {
  const start = select.indexOf("(\n      select array_agg(array[bl.channel::bytea");
  const end = select.indexOf(") as channel_values");
  if (start < 0 || end < start) {
    throw new Error(
      "@langchain/langgraph-checkpoint-postgres changed its SELECT: packed checkpoints cannot be read (core/storage/postgres/saver.ts readingPacked)",
    );
  }
  return (
    select.slice(0, start) +
    `CASE WHEN cp.packed IS NULL THEN ${select.slice(start, end + 1)}
      ELSE array[array[''::bytea, '${PACKED_TYPE}'::bytea, cp.packed]] END` +
    select.slice(end + 1)
  );
}
