// The Store API through the official SDK (client.store.*) against one real server with API keys
// for two tenants: items, search filters and paging, namespaces, TTL expiry, validation, tenant
// isolation, and a graph that writes and reads the same store during a run.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { USER_ROOT } from "../../core/memory/user-store.ts";
import { keyOf, keysEnv, sdkClient } from "../support/auth.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { openTestStore } from "../support/test-backend.ts";

let s: TestServer;
let acme: ReturnType<typeof sdkClient>;
let globex: ReturnType<typeof sdkClient>;
const ACME = { "x-api-key": keyOf("acme", "member") };

beforeAll(async () => {
  s = await startTestServer({
    env: { REFINERY_API_KEYS: keysEnv(["acme", "globex"]) },
    configPath: join(import.meta.dirname, "../fixtures/store.langgraph.json"),
  });
  acme = sdkClient(s.url, ACME);
  globex = sdkClient(s.url, { "x-api-key": keyOf("globex", "member") });
});
afterAll(async () => {
  await s?.close();
});

async function http(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = ACME,
) {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

describe("Store API", () => {
  it("puts, gets, searches, lists and deletes items through the SDK", async () => {
    await acme.store.putItem(["users", "alice"], "prefs", { theme: "dark", size: 3 });
    await acme.store.putItem(["users", "alice"], "profile", { name: "Alice", size: 5 });
    await acme.store.putItem(["users", "bob"], "prefs", { theme: "light", size: 1 });
    await acme.store.putItem(["docs"], "readme", { text: "hello" });

    const item = await acme.store.getItem(["users", "alice"], "prefs");
    expect(item).toMatchObject({
      namespace: ["users", "alice"],
      key: "prefs",
      value: { theme: "dark", size: 3 },
    });
    expect(Date.parse(String(item!.createdAt))).toBeGreaterThan(0);
    expect(await acme.store.getItem(["users", "alice"], "missing")).toBeNull();

    const users = await acme.store.searchItems(["users"], { limit: 10 });
    expect(users.items.map((i) => `${i.namespace.join("/")}:${i.key}`)).toEqual([
      "users/alice:prefs",
      "users/alice:profile",
      "users/bob:prefs",
    ]);
    const big = await acme.store.searchItems(["users"], { filter: { size: { $gte: 3 } } });
    expect(big.items.map((i) => i.key).sort()).toEqual(["prefs", "profile"]);
    const dark = await acme.store.searchItems(["users"], { filter: { theme: "dark" } });
    expect(dark.items.map((i) => i.namespace)).toEqual([["users", "alice"]]);
    const paged = await acme.store.searchItems(["users"], { limit: 1, offset: 2 });
    expect(paged.items.map((i) => i.namespace)).toEqual([["users", "bob"]]);
    expect((await acme.store.searchItems([])).items).toHaveLength(4);

    expect((await acme.store.listNamespaces()).namespaces).toEqual([
      ["docs"],
      ["users", "alice"],
      ["users", "bob"],
    ]);
    expect((await acme.store.listNamespaces({ prefix: ["users"] })).namespaces).toEqual([
      ["users", "alice"],
      ["users", "bob"],
    ]);
    expect((await acme.store.listNamespaces({ suffix: ["bob"] })).namespaces).toEqual([
      ["users", "bob"],
    ]);
    expect((await acme.store.listNamespaces({ maxDepth: 1 })).namespaces).toEqual([
      ["docs"],
      ["users"],
    ]);

    await acme.store.putItem(["users", "alice"], "prefs", { theme: "blue" });
    expect((await acme.store.getItem(["users", "alice"], "prefs"))!.value).toEqual({
      theme: "blue",
    });
    await acme.store.deleteItem(["users", "alice"], "prefs");
    expect(await acme.store.getItem(["users", "alice"], "prefs")).toBeNull();
  });

  it("keeps each tenant's items apart, and checks the role", async () => {
    await acme.store.putItem(["shared"], "k", { owner: "acme" });
    expect(await globex.store.getItem(["shared"], "k")).toBeNull();
    expect((await globex.store.searchItems(["shared"])).items).toEqual([]);
    expect((await globex.store.listNamespaces()).namespaces).not.toContainEqual(["shared"]);
    await globex.store.putItem(["shared"], "k", { owner: "globex" });
    await globex.store.deleteItem(["shared"], "k");
    expect((await acme.store.getItem(["shared"], "k"))!.value).toEqual({ owner: "acme" });

    const viewer = { "x-api-key": keyOf("acme", "viewer") };
    const put = await http(
      "PUT",
      "/store/items",
      { namespace: ["x"], key: "k", value: {} },
      viewer,
    );
    expect(put.status).toBe(403);
    expect(
      (await http("GET", "/store/items?namespace=shared&key=k", undefined, viewer)).json,
    ).toMatchObject({ value: { owner: "acme" } });
    expect((await http("GET", "/store/items?namespace=shared&key=k", undefined, {})).status).toBe(
      401,
    );

    // The items live under an invisible per-tenant prefix, apart from the lessons memory.
    const raw = await openTestStore(s.dbPath);
    try {
      const roots = await raw.store.listNamespaces({ maxDepth: 1, limit: 1000 });
      expect(roots).toEqual([[USER_ROOT]]);
    } finally {
      await raw.close();
    }
  });

  it("refuses invalid input with a 422 naming the field", async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ["PUT", "/store/items", { namespace: ["a.b"], key: "k", value: {} }, "namespace[0]"],
      ["PUT", "/store/items", { namespace: [], key: "k", value: {} }, "namespace"],
      ["PUT", "/store/items", { namespace: ["a"], value: {} }, "key"],
      ["PUT", "/store/items", { namespace: ["a"], key: "k", value: [1] }, "value"],
      ["PUT", "/store/items", { namespace: ["a"], key: "k", value: {}, ttl: -1 }, "ttl"],
      ["DELETE", "/store/items", { namespace: ["a"] }, "key"],
      ["POST", "/store/items/search", { filter: { n: { $near: 1 } } }, "filter.n"],
      ["POST", "/store/items/search", { limit: 0 }, "limit"],
      ["POST", "/store/namespaces", { max_depth: 0 }, "max_depth"],
      ["GET", "/store/items?namespace=a", undefined, "query.key"],
      ["GET", "/store/items?namespace=a..b&key=k", undefined, "query.namespace[1]"],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await http(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(422);
      expect(res.json?.field, `${method} ${path} ${JSON.stringify(body)}`).toBe(field);
    }
  });

  it("drops unknown fields and query parameters, as LangGraph's server does", async () => {
    const put = await http("PUT", "/store/items", {
      namespace: ["extra"],
      key: "k",
      value: { v: 1 },
      colour: "blue",
    });
    expect(put.status).toBe(204);
    const got = await http("GET", "/store/items?namespace=extra&key=k&colour=blue");
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ namespace: ["extra"], key: "k", value: { v: 1 } });
    const found = await http("POST", "/store/items/search", {
      namespace_prefix: ["extra"],
      colour: "blue",
    });
    expect(found.status).toBe(200);
    expect(await http("POST", "/store/namespaces", { prefix: ["extra"], colour: "blue" })).toEqual({
      status: 200,
      json: { namespaces: [["extra"]] },
    });
    const del = await http("DELETE", "/store/items", { namespace: ["extra"], key: "k", colour: 1 });
    expect(del.status).toBe(204);
    expect(await acme.store.getItem(["extra"], "k")).toBeNull();
  });

  it("lets an item expire after its ttl (minutes), and sweeps expired rows", async () => {
    await acme.store.putItem(["tmp"], "short", { v: 1 }, { ttl: 0.005 }); // 300 ms
    await acme.store.putItem(["tmp"], "long", { v: 2 }, { ttl: 60 });
    expect(await acme.store.getItem(["tmp"], "short")).not.toBeNull();
    const end = Date.now() + 10_000;
    while ((await acme.store.getItem(["tmp"], "short", { refreshTtl: false })) !== null) {
      if (Date.now() > end) throw new Error("the item never expired");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await acme.store.searchItems(["tmp"])).items.map((i) => i.key)).toEqual(["long"]);

    // The sweeper deletes what has expired by the time given, and nothing else.
    const raw = await openTestStore(s.dbPath);
    try {
      expect(await raw.store.sweepExpired()).toBe(1); // "short"
      expect(await raw.store.sweepExpired(Date.now() + 59 * 60_000)).toBe(0);
      expect(await raw.store.sweepExpired(Date.now() + 61 * 60_000)).toBe(1); // "long"
    } finally {
      await raw.close();
    }
  });

  it("gives a graph the caller's store during a run (config.store and getStore())", async () => {
    const thread = await acme.threads.create();
    const result = (await acme.runs.wait(thread.thread_id, "memo", {
      input: { note: "first" },
    })) as { found: string | null; keys: string[] };
    expect(result.found).toBe("first");
    expect(result.keys).toEqual(["note-first"]);
    // What the run wrote is the caller's, through the API; another tenant's run sees none of it.
    expect((await acme.store.getItem(["notes"], "note-first"))!.value).toEqual({ text: "first" });
    expect(await globex.store.getItem(["notes"], "note-first")).toBeNull();
    const other = await globex.threads.create();
    const theirs = (await globex.runs.wait(other.thread_id, "memo", {
      input: { note: "second" },
    })) as { keys: string[] };
    expect(theirs.keys).toEqual(["note-second"]);
  });
});
