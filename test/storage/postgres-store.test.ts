// The Postgres store against the real Postgres CI provides (REFINERY_TEST_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432/test): the store conformance suite, each test in its own
// schema, plus what only Postgres shows. No Postgres fails the file; it never skips.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import { openStore } from "../../core/memory/open-store.ts";
import { PostgresStore } from "../../core/memory/postgres-store.ts";
import { describeStoreConformance } from "./store-conformance.ts";
import { describeStoreTtl } from "./store-ttl.ts";

const PG_URL = process.env.REFINERY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PREFIX = `refinery_store_test_${randomBytes(4).toString("hex")}`;
let admin: pg.Pool;
let schemas = 0;

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  // Fails the whole file when Postgres is not there.
  await admin.query("SELECT 1");
});

afterAll(async () => {
  const { rows } = await admin.query<{ nspname: string }>(
    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
    [PREFIX],
  );
  for (const { nspname } of rows) await admin.query(`DROP SCHEMA "${nspname}" CASCADE`);
  await admin.end();
});

const nextSchema = () => `${PREFIX}_${(schemas += 1)}`;

const openPostgres = async () => {
  const schema = nextSchema();
  const opened = await openStore({ postgresUrl: PG_URL, schema });
  return {
    store: opened.store,
    cleanup: async () => {
      await opened.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
};
describeStoreConformance("postgres", openPostgres);
describeStoreTtl("postgres", openPostgres);

describe("postgres store", () => {
  it("opens as kind postgres and keeps items across a reopen", async () => {
    const schema = nextSchema();
    const first = await openStore({ postgresUrl: PG_URL, schema });
    expect(first.kind).toBe("postgres");
    await first.store.put(["lessons", "a1"], "l1", { text: "kept" });
    const before = await first.store.get(["lessons", "a1"], "l1");
    await first.close();
    const again = await openStore({ postgresUrl: PG_URL, schema });
    expect(await again.store.get(["lessons", "a1"], "l1")).toEqual(before);
    await again.close();
  });

  it("puts its table in the chosen schema only", async () => {
    const schema = nextSchema();
    const opened = await openStore({ postgresUrl: PG_URL, schema });
    await opened.store.put(["x"], "k", { v: 1 });
    const { rows } = await admin.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
      [schema],
    );
    expect(rows).toEqual([{ table_name: "store_items" }]);
    await opened.close();
  });

  it("lets two stores on one schema set up concurrently", async () => {
    const schema = nextSchema();
    const stores = Array.from(
      { length: 4 },
      () => new PostgresStore({ connection: PG_URL, schema }),
    );
    await Promise.all(stores.map((s) => s.setup()));
    await stores[0]!.put(["x"], "k", { v: 1 });
    expect((await stores[3]!.get(["x"], "k"))?.value).toEqual({ v: 1 });
    await Promise.all(stores.map((s) => s.stop()));
  });

  it("refuses NUL characters with a RefineryError instead of a driver error", async () => {
    const schema = nextSchema();
    const opened = await openStore({ postgresUrl: PG_URL, schema });
    const err = await opened.store.put(["x"], "k", { text: "a\u0000b" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect((err as RefineryError).code).toBe("invalid_input");
    // The failed batch rolled back and the pool still works.
    await opened.store.put(["x"], "k", { text: "ab" });
    expect((await opened.store.get(["x"], "k"))?.value).toEqual({ text: "ab" });
    await opened.close();
  });

  it("writes a batch in one transaction: a failing put leaves nothing behind", async () => {
    const schema = nextSchema();
    const opened = await openStore({ postgresUrl: PG_URL, schema });
    const err = await opened.store
      .batch([
        { namespace: ["t"], key: "a", value: { ok: true } },
        { namespace: ["t"], key: "b", value: { bad: "\u0000" } },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    expect(await opened.store.get(["t"], "a")).toBeNull();
    await opened.close();
  });
});

describe("openStore errors for Postgres", () => {
  async function failure(opts: Parameters<typeof openStore>[0]): Promise<RefineryError> {
    const err = await openStore(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefineryError);
    return err as RefineryError;
  }

  it("names an unreachable server and how to fix it", async () => {
    const err = await failure({ postgresUrl: "postgres://postgres@127.0.0.1:1/test" });
    expect(err.code).toBe("storage_error");
    expect(err.retryable).toBe(true);
    expect(err.toLine()).toMatch(/cannot reach Postgres at 127\.0\.0\.1:1\/test.*Fix:/);
  });

  it("a lost connection is a retryable storage error, as the run storage's are", async () => {
    // Nothing listens there: each call meets a refused connection (ECONNREFUSED), as during a
    // Postgres restart. A step that reads the store then pauses its run instead of failing it.
    const store = new PostgresStore({ connection: "postgres://postgres@127.0.0.1:1/test" });
    try {
      const err = await store.get(["a"], "k").then(
        () => expect.fail("expected a failure"),
        (e: unknown) => e as RefineryError,
      );
      expect(err).toBeInstanceOf(RefineryError);
      expect(err.code).toBe("storage_error");
      expect(err.retryable).toBe(true);
    } finally {
      await store.stop();
    }
  });

  it("refuses a malformed PG_URL without echoing a password", async () => {
    const err = await failure({ postgresUrl: "mysql://root:secret@db/x" });
    expect(err.code).toBe("invalid_config");
    expect(err.field).toBe("REFINERY_STORE_URL");
    expect(err.toLine()).not.toContain("secret");
    expect((await failure({ postgresUrl: "not a url" })).code).toBe("invalid_config");
  });

  it("names a database that does not exist", async () => {
    const missing = new URL(PG_URL);
    missing.pathname = `/${PREFIX}_missing_db`;
    const err = await failure({ postgresUrl: missing.toString() });
    expect(err.toLine()).toMatch(/does not exist/);
  });

  it("refuses an invalid schema name", async () => {
    const err = await failure({ postgresUrl: PG_URL, schema: 'x"; DROP TABLE y; --' });
    expect(err.code).toBe("invalid_config");
    expect(err.field).toBe("schema");
  });
});
