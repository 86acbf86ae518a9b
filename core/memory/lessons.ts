// The lessons memory (Reflexion-style, no retraining): short reusable lessons distilled from
// finished runs, kept in a LangGraph BaseStore under ["lessons", <assistant id>], de-duplicated,
// capped, ranked for a new task (BM25 by default, embeddings when configured) and demoted when
// they keep failing to help. Works on any BaseStore (SQLite, Postgres, in-memory).
import { createHash } from "node:crypto";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import type { BaseStore } from "@langchain/langgraph-checkpoint";
import { RefineryError } from "../errors.ts";
import type { StepLock } from "./lease-lock.ts";
import { bm25, cosine, jaccard, keywords, normalizeText, tokenize, type RankDoc } from "./text.ts";

export const LESSON_TEXT_MAX = 500;
export const NAMESPACE_ROOT = "lessons";

export type LessonSource = "critique" | "verifier" | "human" | "feedback" | "manual";

export interface LessonEvidence {
  thread_id?: string;
  run_id?: string;
  iteration?: number;
}

export interface Lesson {
  id: string;
  assistant_id: string;
  text: string;
  graph_id: string;
  /** The task family: given by the run (`metadata.family`) or the source task's top keywords. */
  family: string;
  /** Terms of the tasks the lesson came from; what a new task is matched against. */
  keywords: string[];
  source: LessonSource;
  evidence: LessonEvidence[];
  pinned: boolean;
  /** Runs whose generate prompt carried the lesson. */
  uses: number;
  /** ...and whose first draft then passed (helped) or still needed fixing (failed). */
  helped: number;
  failed: number;
  /** Excluded from retrieval (unless pinned) after it kept failing to help. */
  demoted: boolean;
  created_at: string;
  updated_at: string;
  embedding?: number[];
}

export interface NewLesson {
  text: string;
  graph_id: string;
  family?: string;
  /** Text the keywords are taken from (the source task), besides the lesson itself. */
  task?: string;
  keywords?: string[];
  source: LessonSource;
  evidence?: LessonEvidence;
  pinned?: boolean;
}

export interface LessonPatch {
  text?: string;
  pinned?: boolean;
  family?: string;
  keywords?: string[];
  demoted?: boolean;
}

export interface RetrievedLesson {
  id: string;
  text: string;
  score: number;
  /** The first few terms of the tasks it was learned on. */
  about: string;
}

export interface LessonMemoryOptions {
  /** Lessons kept per assistant; the least useful unpinned ones are evicted beyond it. */
  maxLessons?: number;
  /** Lessons put in one generate prompt (default 2). */
  maxPerTask?: number;
  /** Near-duplicate threshold (token-set Jaccard) for merging a new lesson into an old one. */
  duplicateSimilarity?: number;
  /** Failures (without matching helps) after which a lesson is demoted. */
  demoteAfter?: number;
  embeddings?: EmbeddingsInterface;
  /** Minimum cosine similarity for embedding retrieval. */
  minSimilarity?: number;
  /**
   * How long `retrieve` reuses its snapshot of an assistant's lessons (ms, default 2000). Writes
   * through this instance update the snapshot at once; other processes' writes to a shared store
   * are seen within this time. 0 reads the store on every retrieve.
   */
  snapshotMs?: number;
  /**
   * Makes each read-modify-write step exclusive across instances (other threads and processes
   * writing the same store): leaseLock(storage.duties). Without it, steps are serialised only
   * within this instance.
   */
  lock?: StepLock;
  now?: () => Date;
}

/** An assistant's lessons as `retrieve` ranks them, with each one's ranking terms. */
interface Snapshot {
  lessons: readonly Lesson[];
  docs: readonly RankDoc[];
  /** performance.now() when read from the store. */
  readAt: number;
}

const MAX_EVIDENCE = 10;
const MAX_KEYWORDS = 40;

export class LessonMemory {
  readonly maxLessons: number;
  readonly maxPerTask: number;
  private readonly dupSim: number;
  private readonly demoteAfter: number;
  private readonly minSimilarity: number;
  private readonly snapshotMs: number;
  private readonly now: () => Date;
  // retrieve runs in every generate step: it reads a snapshot instead of the whole namespace.
  private readonly snapshots = new Map<string, Snapshot>();
  /** Bumped by every write, so that a read started before it does not replace the snapshot. */
  private readonly writes = new Map<string, number>();
  /** Per assistant, the tail of its queue of read-modify-write steps (see `serial`). */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly listeners = new Set<(assistantId: string) => void>();

  constructor(
    readonly store: BaseStore,
    private readonly options: LessonMemoryOptions = {},
  ) {
    this.maxLessons = options.maxLessons ?? 200;
    this.maxPerTask = options.maxPerTask ?? 2;
    this.dupSim = options.duplicateSimilarity ?? 0.7;
    this.demoteAfter = options.demoteAfter ?? 3;
    this.minSimilarity = options.minSimilarity ?? 0.35;
    this.snapshotMs = options.snapshotMs ?? 2000;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Runs an assistant's read-modify-write steps one at a time in this instance, and under the
   * `lock` option across instances: runs that end together would otherwise both read a lesson,
   * and the second write would drop the first's count (or both would add the same new lesson).
   */
  private serial<T>(assistantId: string, step: () => Promise<T>): Promise<T> {
    const { lock } = this.options;
    const locked = lock ? () => lock(`lessons:${assistantId}`, step) : step;
    const result = (this.queues.get(assistantId) ?? Promise.resolve()).then(locked);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(assistantId, tail);
    void tail.then(() => {
      if (this.queues.get(assistantId) === tail) this.queues.delete(assistantId);
    });
    return result;
  }

  get usesEmbeddings(): boolean {
    return this.options.embeddings !== undefined;
  }

  /** The store namespace of a lessons key (lessonsKey: an assistant, within a partition). */
  namespace(assistantId: string): string[] {
    return [NAMESPACE_ROOT, assistantId];
  }

  /**
   * Stores a lesson, or merges it into an existing one with the same or nearly the same text
   * (evidence and keywords are added, nothing is duplicated). Evicts beyond the cap.
   */
  async add(assistantId: string, input: NewLesson): Promise<{ lesson: Lesson; created: boolean }> {
    return this.serial(assistantId, async () => {
      const text = checkText(input.text, "text");
      const all = await this.all(assistantId);
      const norm = normalizeText(text);
      const twin =
        all.find((l) => normalizeText(l.text) === norm) ??
        all.find((l) => jaccard(l.text, text) >= this.dupSim);
      const at = this.now().toISOString();
      const taskTerms = input.keywords ?? keywords(`${input.task ?? ""}`, 16);
      if (twin) {
        const merged: Lesson = {
          ...twin,
          keywords: union(twin.keywords, taskTerms, MAX_KEYWORDS),
          evidence: input.evidence
            ? [...twin.evidence, input.evidence].slice(-MAX_EVIDENCE)
            : twin.evidence,
          pinned: twin.pinned || Boolean(input.pinned),
          updated_at: at,
        };
        await this.write(merged);
        return { lesson: merged, created: false };
      }
      const lesson: Lesson = {
        id: lessonId(assistantId, norm),
        assistant_id: assistantId,
        text,
        graph_id: input.graph_id,
        family: input.family ?? (keywords(input.task ?? text, 3).join(" ") || "general"),
        keywords: union([], taskTerms, MAX_KEYWORDS),
        source: input.source,
        evidence: input.evidence ? [input.evidence] : [],
        pinned: Boolean(input.pinned),
        uses: 0,
        helped: 0,
        failed: 0,
        demoted: false,
        created_at: at,
        updated_at: at,
      };
      if (this.options.embeddings) lesson.embedding = await this.embed(lesson);
      await this.write(lesson);
      await this.evict(assistantId, [...all, lesson]);
      return { lesson, created: true };
    });
  }

  async get(assistantId: string, id: string): Promise<Lesson | undefined> {
    const item = await this.store.get(this.namespace(assistantId), id);
    return item ? toLesson(item.value) : undefined;
  }

  /** Lessons of an assistant, newest first; `query` ranks them lexically against it instead. */
  async list(
    assistantId: string,
    query: { query?: string; limit?: number; offset?: number } = {},
  ): Promise<Lesson[]> {
    const all = await this.all(assistantId);
    let ordered: Lesson[];
    if (query.query?.trim()) {
      const scores = bm25(tokenize(query.query), all.map(docOf));
      ordered = all
        .filter((l) => (scores.get(l.id) ?? 0) > 0)
        .sort((a, b) => (scores.get(b.id) ?? 0) - (scores.get(a.id) ?? 0));
    } else {
      ordered = [...all].sort(
        (a, b) => b.updated_at.localeCompare(a.updated_at) || cmp(a.id, b.id),
      );
    }
    const offset = query.offset ?? 0;
    return ordered.slice(offset, offset + (query.limit ?? 50));
  }

  async update(assistantId: string, id: string, patch: LessonPatch): Promise<Lesson | undefined> {
    return this.serial(assistantId, async () => {
      const lesson = await this.get(assistantId, id);
      if (!lesson) return undefined;
      const next: Lesson = {
        ...lesson,
        ...(patch.text !== undefined ? { text: checkText(patch.text, "text") } : {}),
        ...(patch.pinned !== undefined ? { pinned: patch.pinned } : {}),
        ...(patch.family !== undefined ? { family: patch.family } : {}),
        ...(patch.keywords !== undefined
          ? { keywords: union([], patch.keywords, MAX_KEYWORDS) }
          : {}),
        ...(patch.demoted !== undefined
          ? // Un-demoting gives the lesson a fresh start.
            patch.demoted
            ? { demoted: true }
            : { demoted: false, failed: 0 }
          : {}),
        updated_at: this.now().toISOString(),
      };
      if (this.options.embeddings && (patch.text !== undefined || patch.keywords !== undefined))
        next.embedding = await this.embed(next);
      await this.write(next);
      return next;
    });
  }

  async delete(assistantId: string, id: string): Promise<boolean> {
    return this.serial(assistantId, async () => {
      const ns = this.namespace(assistantId);
      if (!(await this.store.get(ns, id))) return false;
      await this.remove(assistantId, id);
      return true;
    });
  }

  /** The assistants that have lessons. */
  async assistants(): Promise<string[]> {
    const ns = await this.store.listNamespaces({ prefix: [NAMESPACE_ROOT], limit: 10_000 });
    return ns.map((n) => n[1]).filter((id): id is string => typeof id === "string");
  }

  /**
   * The most relevant lessons for a task: lexical (BM25 over the lessons' text and source-task
   * keywords, at least two shared terms) or embedding similarity, weighted by how often the
   * lesson helped. Demoted lessons are left out unless pinned; pinned ones rank first.
   */
  async retrieve(
    assistantId: string,
    task: string,
    limit = this.maxPerTask,
  ): Promise<RetrievedLesson[]> {
    if (limit <= 0) return [];
    const snapshot = await this.snapshot(assistantId);
    const docs = new Map<string, RankDoc>();
    const all = snapshot.lessons.filter((l, i) => {
      const keep = l.pinned || !l.demoted;
      if (keep) docs.set(l.id, snapshot.docs[i]!);
      return keep;
    });
    if (all.length === 0) return [];
    const relevance = new Map<string, number>();
    const taskTerms = new Set(tokenize(task));
    if (this.options.embeddings && all.some((l) => l.embedding)) {
      const q = await this.options.embeddings.embedQuery(task);
      for (const l of all) {
        const sim = l.embedding ? cosine(q, l.embedding) : 0;
        if (sim >= this.minSimilarity) relevance.set(l.id, sim);
      }
    } else {
      const q = tokenize(task);
      const qset = taskTerms;
      const need = Math.min(2, qset.size);
      const scores = bm25(q, [...docs.values()]);
      for (const l of all) {
        const shared = new Set(docs.get(l.id)!.terms.filter((t) => qset.has(t))).size;
        const s = scores.get(l.id) ?? 0;
        if (shared >= need && s > 0) relevance.set(l.id, s);
      }
    }
    return all
      .filter((l) => relevance.has(l.id))
      .map((l) => ({
        lesson: l,
        score: relevance.get(l.id)! * usefulness(l) * (l.pinned ? 2 : 1),
      }))
      .sort((a, b) => b.score - a.score || cmp(a.lesson.id, b.lesson.id))
      .slice(0, limit)
      .map(({ lesson, score }) => ({
        id: lesson.id,
        text: lesson.text,
        score: round(score),
        about: aboutFor(lesson, taskTerms),
      }));
  }

  /**
   * Records that these lessons were in a run's prompt and whether its first draft then passed.
   * A lesson that failed `demoteAfter` times more than it helped is demoted.
   */
  async recordUse(assistantId: string, ids: string[], helped: boolean): Promise<void> {
    return this.serial(assistantId, async () => {
      for (const id of new Set(ids)) {
        const lesson = await this.get(assistantId, id);
        if (!lesson) continue;
        const next: Lesson = {
          ...lesson,
          uses: lesson.uses + 1,
          helped: lesson.helped + (helped ? 1 : 0),
          failed: lesson.failed + (helped ? 0 : 1),
        };
        next.demoted = next.demoted || next.failed - next.helped >= this.demoteAfter;
        await this.write(next);
      }
    });
  }

  /**
   * Calls `listener` after every write through this instance has landed (the server thread tells
   * its run threads this way, so their next retrieve reads the store again).
   */
  onChange(listener: (assistantId: string) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Drops the snapshot of an assistant's lessons, and voids reads under way: the next retrieve
   * reads the store. For writes made elsewhere (another thread or process) that should count now.
   */
  forget(assistantId: string): void {
    this.writes.set(assistantId, (this.writes.get(assistantId) ?? 0) + 1);
    this.snapshots.delete(assistantId);
  }

  /** Every lesson of an assistant, read from the store (and kept as retrieve's snapshot). */
  private async all(assistantId: string): Promise<Lesson[]> {
    return [...(await this.read(assistantId)).lessons];
  }

  private async snapshot(assistantId: string): Promise<Snapshot> {
    const kept = this.snapshots.get(assistantId);
    if (kept && performance.now() - kept.readAt < this.snapshotMs) return kept;
    return this.read(assistantId);
  }

  private async read(assistantId: string): Promise<Snapshot> {
    const writes = this.writes.get(assistantId) ?? 0;
    // The cap bounds the namespace, so one page (with headroom for concurrent writers) is all.
    const items = await this.store.search(this.namespace(assistantId), {
      limit: this.maxLessons * 2 + 50,
    });
    const lessons = items.map((i) => toLesson(i.value)).filter((l): l is Lesson => l !== undefined);
    const read = { lessons, docs: lessons.map(docOf), readAt: performance.now() };
    // A write that landed while this read was under way may be missing from it: not kept.
    if (this.snapshotMs > 0 && (this.writes.get(assistantId) ?? 0) === writes)
      this.snapshots.set(assistantId, read);
    return read;
  }

  private async write(lesson: Lesson): Promise<void> {
    // The store's own vector index is not used: ranking is ours, so any BaseStore works.
    await this.store.put(this.namespace(lesson.assistant_id), lesson.id, { ...lesson }, false);
    this.patch(lesson.assistant_id, lesson.id, lesson);
  }

  private async remove(assistantId: string, id: string): Promise<void> {
    await this.store.delete(this.namespace(assistantId), id);
    this.patch(assistantId, id, undefined);
  }

  /** Applies a write that has landed to the snapshot (copy on write), and voids reads under way. */
  private patch(assistantId: string, id: string, lesson: Lesson | undefined): void {
    this.writes.set(assistantId, (this.writes.get(assistantId) ?? 0) + 1);
    for (const listener of this.listeners) listener(assistantId);
    const kept = this.snapshots.get(assistantId);
    if (!kept) return;
    const at = kept.lessons.findIndex((l) => l.id === id);
    const lessons = [...kept.lessons];
    const docs = [...kept.docs];
    if (lesson === undefined) {
      if (at === -1) return;
      lessons.splice(at, 1);
      docs.splice(at, 1);
    } else if (at === -1) {
      lessons.push(lesson);
      docs.push(docOf(lesson));
    } else {
      lessons[at] = lesson;
      docs[at] = docOf(lesson);
    }
    this.snapshots.set(assistantId, { ...kept, lessons, docs });
  }

  private async evict(assistantId: string, all: Lesson[]): Promise<void> {
    const excess = all.length - this.maxLessons;
    if (excess <= 0) return;
    const victims = all
      .filter((l) => !l.pinned)
      .sort(
        (a, b) =>
          Number(b.demoted) - Number(a.demoted) ||
          usefulness(a) - usefulness(b) ||
          a.updated_at.localeCompare(b.updated_at) ||
          cmp(a.id, b.id),
      )
      .slice(0, excess);
    for (const v of victims) await this.remove(assistantId, v.id);
  }

  private async embed(lesson: Lesson): Promise<number[]> {
    return this.options.embeddings!.embedQuery(`${lesson.text}\n${lesson.keywords.join(" ")}`);
  }
}

/** What the lesson was learned on, as shown in a prompt: the terms it shares with the task first. */
function aboutFor(l: Lesson, taskTerms: Set<string>): string {
  const shared = l.keywords.filter((k) => taskTerms.has(k));
  return [...shared, ...l.keywords.filter((k) => !taskTerms.has(k))].slice(0, 3).join(", ");
}

/** Laplace-smoothed share of uses that helped, scaled so an unused lesson scores 1. */
function usefulness(l: Lesson): number {
  return ((l.helped + 1) / (l.helped + l.failed + 2)) * 2;
}

function docOf(l: Lesson): { id: string; terms: string[] } {
  return { id: l.id, terms: [...tokenize(l.text), ...l.keywords] };
}

function checkText(text: string, field: string): string {
  const t = text.trim();
  if (!t)
    throw new RefineryError("invalid_input", "lesson text is empty", {
      field,
      fix: "give the lesson as a short non-empty sentence",
    });
  if (t.length > LESSON_TEXT_MAX)
    throw new RefineryError(
      "invalid_input",
      `lesson text is ${t.length} characters, over the limit of ${LESSON_TEXT_MAX}`,
      {
        field,
        fix: `keep a lesson under ${LESSON_TEXT_MAX} characters: one reusable sentence or two`,
      },
    );
  return t;
}

function lessonId(assistantId: string, norm: string): string {
  return createHash("sha256").update(`${assistantId}\n${norm}`).digest("hex").slice(0, 20);
}

function union(a: string[], b: string[], max: number): string[] {
  return [...new Set([...a, ...b.map((s) => s.toLowerCase().trim()).filter(Boolean)])].slice(
    0,
    max,
  );
}

function toLesson(value: Record<string, unknown>): Lesson | undefined {
  if (typeof value.id !== "string" || typeof value.text !== "string") return undefined;
  return value as unknown as Lesson;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * The key an assistant's lessons are kept under for one data partition (tenant): the system
 * assistants are shared by every tenant, their lessons are not. Without a partition it is the
 * assistant id itself, as before partitions existed.
 */
export function lessonsKey(assistantId: string, partition: string | undefined): string {
  return partition ? `${assistantId}~${encodeURIComponent(partition)}` : assistantId;
}
