// The conformance suite every LangGraph BaseStore we use runs (SQLite, Postgres, and LangGraph's
// own InMemoryStore as the reference the others must agree with), through the BaseStore API only.
import type {
  BaseStore,
  GetOperation,
  Item,
  ListNamespacesOperation,
  PutOperation,
  SearchOperation,
} from "@langchain/langgraph-checkpoint";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

export interface OpenedStore {
  store: BaseStore;
  /** Releases everything the factory created (connections, files, schemas). */
  cleanup: () => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const keys = (items: ReadonlyArray<{ key: string }>) => items.map((i) => i.key);
const sortedKeys = (items: ReadonlyArray<{ key: string }>) => keys(items).sort();
const paths = (items: ReadonlyArray<{ namespace: string[]; key: string }>) =>
  items.map((i) => [...i.namespace, i.key].join("/")).sort();

export function describeStoreConformance(name: string, open: () => Promise<OpenedStore>): void {
  describe(`store conformance: ${name}`, () => {
    let store: BaseStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });

    afterEach(async () => {
      await cleanup();
    });

    async function putAll(ns: string[], values: Record<string, Record<string, unknown>>) {
      for (const [key, value] of Object.entries(values)) await store.put(ns, key, value);
    }

    describe("get, put, update, delete", () => {
      it("returns null for a missing key and namespace", async () => {
        expect(await store.get(["nothing", "here"], "k")).toBeNull();
        await store.put(["docs"], "a", { n: 1 });
        expect(await store.get(["docs"], "b")).toBeNull();
        expect(await store.get(["docs", "a"], "a")).toBeNull();
      });

      it("stores an item with its namespace, key, value and Date timestamps", async () => {
        const before = Date.now();
        await store.put(["users", "u1"], "prefs", { theme: "dark", size: 12 });
        const item = (await store.get(["users", "u1"], "prefs")) as Item;
        expect(item).toMatchObject({
          namespace: ["users", "u1"],
          key: "prefs",
          value: { theme: "dark", size: 12 },
        });
        expect(item.createdAt).toBeInstanceOf(Date);
        expect(item.updatedAt).toBeInstanceOf(Date);
        expect(item.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
        expect(item.createdAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
        expect(item.updatedAt.getTime()).toBe(item.createdAt.getTime());
      });

      it("replaces the value on update, keeps createdAt and moves updatedAt", async () => {
        await store.put(["docs"], "a", { title: "one", extra: true });
        // Times copied out: InMemoryStore hands out its live item and updates it in place.
        const first = (await store.get(["docs"], "a")) as Item;
        const [created, updated] = [first.createdAt.getTime(), first.updatedAt.getTime()];
        await sleep(5);
        await store.put(["docs"], "a", { title: "two" });
        const second = (await store.get(["docs"], "a")) as Item;
        expect(second.value).toEqual({ title: "two" });
        expect(second.createdAt.getTime()).toBe(created);
        expect(second.updatedAt.getTime()).toBeGreaterThan(updated);
      });

      it("deletes with delete() and with a null put; deleting a missing key is a no-op", async () => {
        await putAll(["docs"], { a: { n: 1 }, b: { n: 2 }, c: { n: 3 } });
        await store.delete(["docs"], "a");
        await store.batch([{ namespace: ["docs"], key: "b", value: null }]);
        await store.delete(["docs"], "never-there");
        await store.delete(["elsewhere"], "a");
        expect(await store.get(["docs"], "a")).toBeNull();
        expect(await store.get(["docs"], "b")).toBeNull();
        expect((await store.get(["docs"], "c"))?.value).toEqual({ n: 3 });
        expect(sortedKeys(await store.search(["docs"]))).toEqual(["c"]);
      });

      it("a deleted key can be written again, as a new item", async () => {
        await store.put(["docs"], "a", { v: 1 });
        const first = (await store.get(["docs"], "a")) as Item;
        await store.delete(["docs"], "a");
        await sleep(5);
        await store.put(["docs"], "a", { v: 2 });
        const again = (await store.get(["docs"], "a")) as Item;
        expect(again.value).toEqual({ v: 2 });
        expect(again.createdAt.getTime()).toBeGreaterThan(first.createdAt.getTime());
      });

      it("keeps the same key in different namespaces apart", async () => {
        await store.put(["a"], "k", { where: "a" });
        await store.put(["a", "b"], "k", { where: "a/b" });
        await store.put(["b"], "k", { where: "b" });
        await store.delete(["a"], "k");
        expect(await store.get(["a"], "k")).toBeNull();
        expect((await store.get(["a", "b"], "k"))?.value).toEqual({ where: "a/b" });
        expect((await store.get(["b"], "k"))?.value).toEqual({ where: "b" });
      });

      it("round-trips JSON values: nesting, arrays, numbers, booleans, nulls, empty objects", async () => {
        const value = {
          nested: { deep: { deeper: [1, { x: "y" }, [true, null]] } },
          list: ["a", "b"],
          int: 42,
          negative: -7,
          float: 3.25,
          tiny: 1e-9,
          big: 9007199254740991,
          yes: true,
          no: false,
          nothing: null,
          empty: {},
          emptyList: [],
          emptyString: "",
        };
        await store.put(["values"], "all", value);
        await store.put(["values"], "none", {});
        expect((await store.get(["values"], "all"))?.value).toEqual(value);
        expect((await store.get(["values"], "none"))?.value).toEqual({});
      });

      it("handles unicode and SQL-significant characters in namespaces, keys and values", async () => {
        const text =
          "naïve café — 日本語 — עברית — 👩‍👩‍👧 — e\u0301 — 'quotes' \"double\" \\ back\nline\ttab";
        const ns = ["ünï", "名前", "100%_done", "it's"];
        const key = "ключ 🔑 %_\\'\"";
        await store.put(ns, key, { text, [text]: "key too" });
        const item = (await store.get(ns, key)) as Item;
        expect(item.namespace).toEqual(ns);
        expect(item.key).toBe(key);
        expect(item.value).toEqual({ text, [text]: "key too" });
        expect(keys(await store.search(["ünï", "名前"]))).toEqual([key]);
        expect(keys(await store.search(["ünï"], { filter: { text } }))).toEqual([key]);
        expect(await store.listNamespaces({ prefix: ["ünï"] })).toEqual([ns]);
      });

      it("stores large values (a 1 MB string, a 20,000-element array)", async () => {
        const big = "x".repeat(1024 * 1024) + "end";
        const many = Array.from({ length: 20_000 }, (_, i) => ({ i, label: `item ${i}` }));
        await store.put(["large"], "string", { big });
        await store.put(["large"], "array", { many });
        expect((await store.get(["large"], "string"))?.value.big).toBe(big);
        expect((await store.get(["large"], "array"))?.value.many).toEqual(many);
      });

      it("refuses invalid namespaces", async () => {
        await expect(store.put([], "k", { v: 1 })).rejects.toThrow();
        await expect(store.put(["a.b"], "k", { v: 1 })).rejects.toThrow();
        await expect(store.put(["a", ""], "k", { v: 1 })).rejects.toThrow();
        await expect(store.put(["langgraph"], "k", { v: 1 })).rejects.toThrow();
      });
    });

    describe("search", () => {
      beforeEach(async () => {
        await store.put(["docs"], "root", { kind: "doc" });
        await store.put(["docs", "guides"], "g1", { kind: "guide" });
        await store.put(["docs", "guides", "deep"], "g2", { kind: "guide" });
        await store.put(["docsx"], "sibling", { kind: "doc" });
        await store.put(["docs_"], "underscore", { kind: "doc" });
        await store.put(["other", "docs"], "o1", { kind: "doc" });
      });

      it("matches a namespace and everything below it, label by label", async () => {
        expect(paths(await store.search(["docs"]))).toEqual([
          "docs/guides/deep/g2",
          "docs/guides/g1",
          "docs/root",
        ]);
        expect(paths(await store.search(["docs", "guides"]))).toEqual([
          "docs/guides/deep/g2",
          "docs/guides/g1",
        ]);
        expect(paths(await store.search(["docs", "guides", "deep"]))).toEqual([
          "docs/guides/deep/g2",
        ]);
        expect(paths(await store.search(["doc"]))).toEqual([]);
        expect(paths(await store.search(["docs", "guide"]))).toEqual([]);
        expect(paths(await store.search(["docs_"]))).toEqual(["docs_/underscore"]);
        expect(paths(await store.search(["docs", "guides", "deep", "deeper"]))).toEqual([]);
      });

      it("searches everything with an empty prefix", async () => {
        expect(await store.search([], { limit: 100 })).toHaveLength(6);
      });

      it("returns items with their namespace and Date timestamps", async () => {
        const [item] = await store.search(["docs", "guides", "deep"]);
        expect(item).toMatchObject({ namespace: ["docs", "guides", "deep"], key: "g2" });
        expect(item?.value).toEqual({ kind: "guide" });
        expect(item?.createdAt).toBeInstanceOf(Date);
        expect(item?.updatedAt).toBeInstanceOf(Date);
      });

      it("sees updates and deletes", async () => {
        await store.put(["docs"], "root", { kind: "changed" });
        await store.delete(["docs", "guides"], "g1");
        const items = await store.search(["docs"]);
        expect(paths(items)).toEqual(["docs/guides/deep/g2", "docs/root"]);
        expect(items.find((i) => i.key === "root")?.value).toEqual({ kind: "changed" });
      });
    });

    describe("search filters", () => {
      beforeEach(async () => {
        await putAll(["f"], {
          a: { color: "red", score: 1, active: true, tag: null, n: "1" },
          b: { color: "blue", score: 2.5, active: false, tag: "x" },
          c: { color: "red", score: 5, active: true, tag: "y", nested: { color: "red" } },
          d: { color: "green", score: 10, active: false },
          e: { other: "no color, no score" },
        });
        await store.put(["g"], "z", { color: "red", score: 1 });
      });

      const find = async (filter: Record<string, unknown>) =>
        sortedKeys(await store.search(["f"], { filter, limit: 100 }));

      it("matches equality on top-level fields, type-strictly", async () => {
        expect(await find({ color: "red" })).toEqual(["a", "c"]);
        expect(await find({ score: 2.5 })).toEqual(["b"]);
        expect(await find({ active: true })).toEqual(["a", "c"]);
        expect(await find({ active: false })).toEqual(["b", "d"]);
        expect(await find({ tag: null })).toEqual(["a"]);
        expect(await find({ n: "1" })).toEqual(["a"]);
        expect(await find({ n: 1 })).toEqual([]);
        expect(await find({ score: "1" })).toEqual([]);
        expect(await find({ active: 1 })).toEqual([]);
        expect(await find({ color: "purple" })).toEqual([]);
        expect(await find({ missing: "x" })).toEqual([]);
      });

      it("ANDs conditions and stays within the namespace prefix", async () => {
        expect(await find({ color: "red", score: 5 })).toEqual(["c"]);
        expect(await find({ color: "red", active: false })).toEqual([]);
        expect(sortedKeys(await store.search([], { filter: { color: "red", score: 1 } }))).toEqual([
          "a",
          "z",
        ]);
      });

      it("supports $eq, $ne (which also matches a missing field), $in and $nin", async () => {
        expect(await find({ color: { $eq: "blue" } })).toEqual(["b"]);
        expect(await find({ color: { $ne: "red" } })).toEqual(["b", "d", "e"]);
        expect(await find({ tag: { $ne: null } })).toEqual(["b", "c", "d", "e"]);
        expect(await find({ color: { $in: ["blue", "green"] } })).toEqual(["b", "d"]);
        expect(await find({ color: { $nin: ["blue", "green"] } })).toEqual(["a", "c", "e"]);
        expect(await find({ color: { $in: [] } })).toEqual([]);
        expect(await find({ score: { $in: [1, 10] } })).toEqual(["a", "d"]);
      });

      it("supports $gt, $gte, $lt, $lte on numbers, and ranges", async () => {
        expect(await find({ score: { $gt: 2.5 } })).toEqual(["c", "d"]);
        expect(await find({ score: { $gte: 2.5 } })).toEqual(["b", "c", "d"]);
        expect(await find({ score: { $lt: 5 } })).toEqual(["a", "b"]);
        expect(await find({ score: { $lte: 5 } })).toEqual(["a", "b", "c"]);
        expect(await find({ score: { $gt: 1, $lt: 10 } })).toEqual(["b", "c"]);
        expect(await find({ score: { $gte: 0 }, color: "red" })).toEqual(["a", "c"]);
        expect(await find({ score: { $gt: 100 } })).toEqual([]);
      });

      it("treats an undefined filter value as 'the field is absent'", async () => {
        expect(await find({ color: "red", nested: undefined })).toEqual(["a"]);
      });
    });

    describe("limit, offset and order", () => {
      it("returns items of one namespace in insertion order; an update keeps its place", async () => {
        await putAll(["o"], { k3: { i: 0 }, k1: { i: 1 }, k2: { i: 2 } });
        await store.put(["o"], "k3", { i: 3 });
        expect(keys(await store.search(["o"]))).toEqual(["k3", "k1", "k2"]);
        await store.delete(["o"], "k1");
        await store.put(["o"], "k1", { i: 4 });
        expect(keys(await store.search(["o"]))).toEqual(["k3", "k2", "k1"]);
      });

      it("groups namespaces in the order they got their first item", async () => {
        await store.put(["p", "b"], "1", { v: 1 });
        await store.put(["p", "a"], "2", { v: 2 });
        await store.put(["p", "b"], "3", { v: 3 });
        await store.put(["p"], "4", { v: 4 });
        await store.put(["p", "a"], "5", { v: 5 });
        expect(keys(await store.search(["p"]))).toEqual(["1", "3", "2", "5", "4"]);
        expect(keys(await store.search(["p"], { filter: { v: { $gte: 2 } } }))).toEqual([
          "3",
          "2",
          "5",
          "4",
        ]);
      });

      it("returns 10 items by default and pages through all with limit and offset", async () => {
        for (let i = 0; i < 25; i += 1)
          await store.put(["page"], `k${String(i).padStart(2, "0")}`, { i });
        expect(await store.search(["page"])).toHaveLength(10);
        const all = keys(await store.search(["page"], { limit: 100 }));
        expect(all).toHaveLength(25);
        const pages: string[] = [];
        for (let offset = 0; offset < 25; offset += 7) {
          const page = await store.search(["page"], { limit: 7, offset });
          expect(page.length).toBeLessThanOrEqual(7);
          pages.push(...keys(page));
        }
        expect(pages).toEqual(all);
        expect(await store.search(["page"], { limit: 10, offset: 25 })).toEqual([]);
        expect(await store.search(["page"], { limit: 0 })).toEqual([]);
      });

      it("applies limit and offset after the filter", async () => {
        for (let i = 0; i < 20; i += 1) await store.put(["lim"], `k${i}`, { even: i % 2 === 0, i });
        const evens = await store.search(["lim"], { filter: { even: true }, limit: 3, offset: 2 });
        expect(evens.map((i) => i.value.i)).toEqual([4, 6, 8]);
      });

      it("ignores `query` without an embeddings index: no filtering, same order", async () => {
        await putAll(["q"], {
          a: { text: "apples" },
          b: { text: "bananas" },
          c: { text: "cherries" },
        });
        const plain = await store.search(["q"]);
        const queried = await store.search(["q"], { query: "bananas" });
        expect(keys(queried)).toEqual(keys(plain));
        expect(keys(queried)).toEqual(["a", "b", "c"]);
      });
    });

    describe("listNamespaces", () => {
      // Sorted as listNamespaces returns them; put in reverse, so the order is the store's.
      const NAMESPACES = [
        ["a", "b", "c"],
        ["a", "b", "d"],
        ["a", "e"],
        ["a", "e", "f", "g"],
        ["ab"],
        ["x", "b", "c"],
        ["x", "y"],
      ];

      beforeEach(async () => {
        for (const ns of [...NAMESPACES].reverse()) await store.put(ns, "k", { v: 1 });
        await store.put(["a", "e"], "k2", { v: 2 });
      });

      it("lists each namespace holding items once, sorted", async () => {
        expect(await store.listNamespaces()).toEqual(NAMESPACES);
      });

      it("filters by prefix (label by label) and suffix, with * for any one label", async () => {
        expect(await store.listNamespaces({ prefix: ["a"] })).toEqual([
          ["a", "b", "c"],
          ["a", "b", "d"],
          ["a", "e"],
          ["a", "e", "f", "g"],
        ]);
        expect(await store.listNamespaces({ prefix: ["a", "b"] })).toEqual([
          ["a", "b", "c"],
          ["a", "b", "d"],
        ]);
        expect(await store.listNamespaces({ suffix: ["c"] })).toEqual([
          ["a", "b", "c"],
          ["x", "b", "c"],
        ]);
        expect(await store.listNamespaces({ prefix: ["a"], suffix: ["c"] })).toEqual([
          ["a", "b", "c"],
        ]);
        expect(await store.listNamespaces({ prefix: ["*", "b"] })).toEqual([
          ["a", "b", "c"],
          ["a", "b", "d"],
          ["x", "b", "c"],
        ]);
        expect(await store.listNamespaces({ suffix: ["*", "c"] })).toEqual([
          ["a", "b", "c"],
          ["x", "b", "c"],
        ]);
        expect(await store.listNamespaces({ prefix: ["nope"] })).toEqual([]);
      });

      it("cuts namespaces at maxDepth and merges what becomes equal", async () => {
        expect(await store.listNamespaces({ maxDepth: 1 })).toEqual([["a"], ["ab"], ["x"]]);
        expect(await store.listNamespaces({ prefix: ["a"], maxDepth: 2 })).toEqual([
          ["a", "b"],
          ["a", "e"],
        ]);
        expect(await store.listNamespaces({ prefix: ["a", "e"], maxDepth: 3 })).toEqual([
          ["a", "e"],
          ["a", "e", "f"],
        ]);
      });

      it("pages with limit and offset", async () => {
        const all = await store.listNamespaces();
        expect(await store.listNamespaces({ limit: 2 })).toEqual(all.slice(0, 2));
        expect(await store.listNamespaces({ limit: 3, offset: 2 })).toEqual(all.slice(2, 5));
        expect(await store.listNamespaces({ offset: 100 })).toEqual([]);
        expect(await store.listNamespaces({ maxDepth: 1, limit: 1, offset: 1 })).toEqual([["ab"]]);
      });

      it("returns at most 100 namespaces by default", async () => {
        await store.batch(
          Array.from({ length: 120 }, (_, i) => ({
            namespace: ["many", `n${i}`],
            key: "k",
            value: { i },
          })),
        );
        expect(await store.listNamespaces({ prefix: ["many"] })).toHaveLength(100);
        expect(await store.listNamespaces({ prefix: ["many"], limit: 500 })).toHaveLength(120);
      });
    });

    describe("batch", () => {
      it("returns one result per operation, in order", async () => {
        await store.put(["b"], "existing", { v: 0 });
        const ops: [
          PutOperation,
          GetOperation,
          SearchOperation,
          ListNamespacesOperation,
          GetOperation,
        ] = [
          { namespace: ["b"], key: "new", value: { v: 1 } },
          { namespace: ["b"], key: "existing" },
          { namespacePrefix: ["b"], limit: 10, offset: 0 },
          { matchConditions: [{ matchType: "prefix", path: ["b"] }], limit: 10, offset: 0 },
          { namespace: ["b"], key: "absent" },
        ];
        const [put, get, search, list, missing] = await store.batch(ops);
        expect(put).toBeFalsy();
        expect(get?.value).toEqual({ v: 0 });
        expect(keys(search)).toEqual(["existing"]);
        expect(list).toEqual([["b"]]);
        expect(missing).toBeNull();
        expect((await store.get(["b"], "new"))?.value).toEqual({ v: 1 });
      });

      it("reads see the store as before the batch; the last put of a key wins", async () => {
        await store.put(["b"], "k", { v: 0 });
        const ops: [PutOperation, SearchOperation, GetOperation, ...PutOperation[]] = [
          { namespace: ["b"], key: "k", value: { v: 1 } },
          { namespacePrefix: ["b"], limit: 10, offset: 0 },
          { namespace: ["b"], key: "new" },
          { namespace: ["b"], key: "new", value: { v: 1 } },
          { namespace: ["b"], key: "k", value: { v: 2 } },
          { namespace: ["b"], key: "gone", value: { v: 3 } },
          { namespace: ["b"], key: "gone", value: null },
        ];
        const [, seen, fresh] = await store.batch(ops);
        expect(seen?.map((i) => i.value)).toEqual([{ v: 0 }]);
        expect(fresh).toBeNull();
        expect((await store.get(["b"], "new"))?.value).toEqual({ v: 1 });
        expect((await store.get(["b"], "k"))?.value).toEqual({ v: 2 });
        expect(await store.get(["b"], "gone")).toBeNull();
      });

      it("runs concurrent batches without losing writes", async () => {
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            store.batch([
              { namespace: ["c", `w${i % 4}`], key: `k${i}`, value: { i } },
              { namespace: ["c", "shared"], key: "same", value: { i } },
              { namespacePrefix: ["c"], limit: 5, offset: 0 },
            ]),
          ),
        );
        const items = await store.search(["c"], { limit: 1000 });
        expect(items).toHaveLength(41);
        for (let i = 0; i < 40; i += 1) {
          expect((await store.get(["c", `w${i % 4}`], `k${i}`))?.value).toEqual({ i });
        }
        const same = await store.get(["c", "shared"], "same");
        expect(same?.value.i).toBeGreaterThanOrEqual(0);
        expect(same?.value.i).toBeLessThan(40);
      });

      it("interleaves concurrent reads and updates of one item", async () => {
        await store.put(["c"], "counter", { n: 0 });
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, n) =>
            n % 2 === 0 ? store.put(["c"], "counter", { n }) : store.get(["c"], "counter"),
          ),
        );
        for (const r of results) if (r) expect(typeof (r as Item).value.n).toBe("number");
        expect(typeof (await store.get(["c"], "counter"))?.value.n).toBe("number");
      });
    });
  });
}
