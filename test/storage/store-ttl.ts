// The Store API's TTLs on a store of ours (SQLite, Postgres), on a fake clock: an item expires
// `ttl` minutes after its put or its last refreshing read; get and search refresh unless
// `refreshTtl: false`; sweepExpired deletes what has expired and nothing else.
import type { BaseStore } from "@langchain/langgraph-checkpoint";
import { describe, expect, it, vi } from "vitest";
import type { OpenedStore } from "./store-conformance.ts";

type TtlStore = BaseStore & { sweepExpired(now?: number): number | Promise<number> };

export function describeStoreTtl(name: string, open: () => Promise<OpenedStore>): void {
  describe(`store TTL: ${name}`, () => {
    it("expires, refreshes on get and search unless refreshTtl is false, and sweeps", async () => {
      const opened = await open();
      const store = opened.store as TtlStore;
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        const t0 = Date.parse("2026-01-01T00:00:00Z");
        vi.setSystemTime(t0);
        const put = (key: string, ttl: number | null) =>
          store.batch([{ namespace: ["t"], key, value: { key }, ttl } as never]);
        await put("a", 1);
        await put("b", 1);
        await put("c", null);
        vi.setSystemTime(t0 + 50_000);
        await store.get(["t"], "a"); // "a" now lives until t0 + 110 s
        await store.batch([{ namespace: ["t"], key: "b", refreshTtl: false } as never]);
        vi.setSystemTime(t0 + 100_000);
        // "b" expired at t0 + 60 s; this search refreshes "a" to t0 + 160 s.
        expect((await store.search(["t"])).map((i) => i.key)).toEqual(["a", "c"]);
        expect(await store.get(["t"], "b")).toBeNull();
        expect(await store.listNamespaces({})).toEqual([["t"]]);
        vi.setSystemTime(t0 + 150_000);
        const [found] = await store.batch([
          { namespacePrefix: ["t"], limit: 10, offset: 0, refreshTtl: false } as never,
        ]);
        expect((found as unknown as { key: string }[]).map((i) => i.key)).toEqual(["a", "c"]);
        vi.setSystemTime(t0 + 161_000);
        expect((await store.search(["t"])).map((i) => i.key)).toEqual(["c"]);
        // A put over an expired item makes it new again.
        await put("b", 1);
        const again = await store.get(["t"], "b");
        expect(again?.createdAt.getTime()).toBe(t0 + 161_000);
        expect(await store.sweepExpired(t0 + 161_000)).toBe(1); // "a"
        expect(await store.sweepExpired(t0 + 221_000)).toBe(1); // the new "b"
        expect((await store.search(["t"])).map((i) => i.key)).toEqual(["c"]);
      } finally {
        vi.useRealTimers();
        await opened.cleanup();
      }
    });
  });
}
