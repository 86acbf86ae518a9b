// The Store API's store (`/store/*`, and `config.store` / `getStore()` in graphs): the LangGraph
// store the lessons memory uses, with every namespace of a caller kept under
// [USER_ROOT, <partition label>] so it never meets the lessons (["lessons", …]) nor another
// tenant's items. The prefix is invisible: namespaces go in and come out without it.
import {
  BaseStore,
  type GetOperation,
  type Item,
  type ListNamespacesOperation,
  type Operation,
  type OperationResults,
  type PutOperation,
  type SearchItem,
  type SearchOperation,
} from "@langchain/langgraph-checkpoint";
import type { TtlOptions } from "./store-ops.ts";

export const USER_ROOT = "refinery_store";

/** A namespace label for a partition ("" without auth): base64url has no '.' or ':'. */
export function partitionLabel(partition: string): string {
  return `p${Buffer.from(partition, "utf8").toString("base64url")}`;
}

export class PartitionedStore extends BaseStore {
  private readonly prefix: string[];

  /** `base` honours `ttl` / `refreshTtl` if it is ours (SqliteStore, PostgresStore). */
  constructor(
    readonly base: BaseStore,
    partition: string,
  ) {
    super();
    this.prefix = [USER_ROOT, partitionLabel(partition)];
  }

  private inner(ns: readonly string[]): string[] {
    return [...this.prefix, ...ns];
  }

  private outer(ns: readonly string[]): string[] {
    return ns.slice(this.prefix.length);
  }

  private item<T extends Item | SearchItem>(item: T): T {
    return { ...item, namespace: this.outer(item.namespace) };
  }

  async batch<Op extends Operation[]>(operations: Op): Promise<OperationResults<Op>> {
    const mapped = operations.map((op): Operation => {
      if ("namespacePrefix" in op) {
        return { ...op, namespacePrefix: this.inner(op.namespacePrefix) };
      }
      if ("namespace" in op) return { ...op, namespace: this.inner(op.namespace) };
      const list = op as ListNamespacesOperation;
      const conditions = list.matchConditions ?? [];
      const prefix = conditions.find((c) => c.matchType === "prefix");
      return {
        ...list,
        matchConditions: [
          ...conditions.filter((c) => c !== prefix),
          { matchType: "prefix", path: this.inner(prefix?.path ?? []) },
        ],
        ...(list.maxDepth !== undefined ? { maxDepth: list.maxDepth + this.prefix.length } : {}),
      };
    });
    const results = (await this.base.batch(mapped)) as unknown[];
    return results.map((result, i) => {
      const op = operations[i]!;
      if (result === null || result === undefined) return result;
      if ("namespacePrefix" in op) return (result as SearchItem[]).map((it) => this.item(it));
      if ("value" in op) return result;
      if ("namespace" in op) return this.item(result as Item);
      return (result as string[][]).map((ns) => this.outer(ns));
    }) as OperationResults<Op>;
  }

  /** A put with a TTL in minutes (null: never expires). */
  async putItem(
    namespace: string[],
    key: string,
    value: Record<string, unknown>,
    options: { index?: false | string[]; ttl?: number | null } = {},
  ): Promise<void> {
    const op: PutOperation & TtlOptions = {
      namespace,
      key,
      value,
      ...(options.index !== undefined ? { index: options.index } : {}),
      ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
    };
    await this.batch([op]);
  }

  async getItem(namespace: string[], key: string, refreshTtl?: boolean): Promise<Item | null> {
    const op: GetOperation & TtlOptions = {
      namespace,
      key,
      ...(refreshTtl !== undefined ? { refreshTtl } : {}),
    };
    const [item] = await this.batch([op]);
    return item ?? null;
  }

  async searchItems(
    namespacePrefix: string[],
    options: {
      filter?: Record<string, unknown>;
      limit: number;
      offset: number;
      query?: string;
      refreshTtl?: boolean;
    },
  ): Promise<SearchItem[]> {
    const op: SearchOperation & TtlOptions = {
      namespacePrefix,
      limit: options.limit,
      offset: options.offset,
      ...(options.filter !== undefined ? { filter: options.filter } : {}),
      ...(options.query !== undefined ? { query: options.query } : {}),
      ...(options.refreshTtl !== undefined ? { refreshTtl: options.refreshTtl } : {}),
    };
    const [items] = await this.batch([op]);
    return items ?? [];
  }

  /** The lifecycle belongs to the base store's owner. */
  override start(): void {}
  override stop(): void {}
}

/** One opened store, and a partition's view of it (cheap: made per request or per run). */
export interface UserStore {
  readonly kind: "sqlite" | "postgres";
  forPartition(partition: string): PartitionedStore;
  /** Deletes expired items; returns how many. */
  sweep(): Promise<number>;
  /** Deletes every item of every partition (POST /internal/truncate, dev servers only). */
  clear(): Promise<void>;
}

export function createUserStore(base: BaseStore, kind: "sqlite" | "postgres"): UserStore {
  return {
    kind,
    forPartition: (partition) => new PartitionedStore(base, partition),
    sweep: async () =>
      "sweepExpired" in base
        ? (base as unknown as { sweepExpired(): number | Promise<number> }).sweepExpired()
        : 0,
    clear: async () => {
      if ("clear" in base) await (base as unknown as { clear(): void | Promise<void> }).clear();
    },
  };
}
