// The differential harness's normaliser and comparator (npm run diff:langgraph runs them against
// the LangGraph server; that run is not part of npm test): ids, timestamps and key order are no
// difference, everything else is, at a path that says where; intended differences are only
// those the list names.
import { describe, expect, it } from "vitest";
import { classify, comparable, diffSteps } from "../../diff/compare.ts";
import { compare, normalize, parseSse, shapeOf } from "../../diff/normalize.ts";

describe("normalize", () => {
  it("replaces uuids, interrupt ids and timestamps, and sorts keys", () => {
    const value = {
      z: "2026-12-06T19:51:25.123Z",
      a: {
        thread_id: "01a24ce8-65cc-735d-b9dc-1211b8a9708c",
        path: "/threads/5e82d03b-babb-4a22-be02-8da122cce2e9/runs",
      },
      interrupts: [{ id: "62711f4fffe6f47cb45881dfecf55091" }],
    };
    const out = normalize(value);
    expect(out).toEqual({
      a: { path: "/threads/<uuid>/runs", thread_id: "<uuid>" },
      interrupts: [{ id: "<hex32>" }],
      z: "<ts>",
    });
    expect(Object.keys(out as object)).toEqual(["a", "interrupts", "z"]);
    expect(normalize("Answer: 42")).toBe("Answer: 42");
  });

  it("shapeOf keeps keys and types, not texts", () => {
    expect(shapeOf({ error: "not_found", detail: { n: 3, ok: true, list: ["x"] } })).toEqual({
      error: "<string>",
      detail: { n: "<number>", ok: true, list: ["<string>"] },
    });
  });
});

describe("compare", () => {
  it("reports missing, extra and changed values at their paths", () => {
    const diffs = compare(
      { a: 1, b: { c: [1, 2, 3] }, extra: true },
      { a: 2, b: { c: [1, 5] }, gone: null },
    );
    expect(diffs).toEqual([
      { path: "a", kind: "value", ours: 1, ref: 2 },
      { path: "b.c[1]", kind: "value", ours: 2, ref: 5 },
      { path: "b.c[2]", kind: "extra", ours: 3 },
      { path: "gone", kind: "missing", ref: null },
      { path: "extra", kind: "extra", ours: true },
    ]);
    expect(compare({ x: [1, { y: "s" }] }, { x: [1, { y: "s" }] })).toEqual([]);
    // null and an absent key are different answers
    expect(compare({ v: null }, {})).toEqual([{ path: "v", kind: "extra", ours: null }]);
  });

  it("a different status is one difference, not one per body field", () => {
    const diffs = diffSteps(
      [{ label: "create", status: 422, body: { error: "invalid_input", message: "m" } }],
      [{ label: "create", status: 200, body: { thread_id: "x", a: 1, b: 2 } }],
    );
    expect(diffs).toHaveLength(1);
    expect(diffs[0]).toMatchObject({ path: "create.status", kind: "value" });
  });

  it("errors compare by status (not body or Content-Type); unordered lists without their order", () => {
    const ours = {
      label: "get",
      status: 404,
      headers: { "content-type": "application/json" },
      body: { error: "not_found", message: "Thread not found", field: "thread_id" },
    };
    const ref = { label: "get", status: 404, headers: { "content-type": "text/plain" }, body: "x" };
    expect(diffSteps([ours], [ref])).toEqual([]);
    expect(diffSteps([ours], [{ ...ref, status: 409 }])).toHaveLength(1);
    const a = { label: "s", status: 200, body: [{ n: 1 }, { n: 2 }], unordered: true };
    const b = { label: "s", status: 200, body: [{ n: 2 }, { n: 1 }], unordered: true };
    expect(diffSteps([a], [b])).toEqual([]);
    expect(diffSteps([{ ...a, unordered: false }], [{ ...b, unordered: false }])).toHaveLength(2);
    expect(
      comparable({
        label: "h",
        headers: {
          "content-location": "/runs/" + "a".repeat(8) + "-aaaa-4aaa-8aaa-" + "a".repeat(12),
        },
      }),
    ).toEqual({
      headers: { "content-location": "/runs/<uuid>" },
    });
  });

  it("a step one server answered and the other did not is a difference", () => {
    expect(diffSteps([{ label: "a", status: 200 }], [])).toEqual([
      { path: "a", kind: "extra", ours: { status: 200 } },
    ]);
  });
});

describe("parseSse", () => {
  it("reads event names and JSON data, skipping comments and ids", () => {
    const text =
      ': keep-alive\n\nevent: metadata\ndata: {"run_id":"r"}\nid: 1-1\n\n' +
      'event: values\ndata: {"a":\ndata: 1}\n\nevent: end\ndata: not json\n\n';
    expect(parseSse(text)).toEqual([
      { event: "metadata", data: { run_id: "r" } },
      { event: "values", data: { a: 1 } },
      { event: "end", data: "not json" },
    ]);
  });
});

describe("classify", () => {
  const list = [
    { route: "GET /info", path: /^info\.body\.name$/, kind: "extra" as const, reason: "ours" },
  ];
  it("a difference the list names is intended, with its reason; any other is unexpected", () => {
    const c = { route: "GET /info", name: "info" };
    const named = { path: "info.body.name", kind: "extra" as const, ours: "refinery" };
    const other = { path: "info.body.version", kind: "value" as const, ours: "1", ref: "2" };
    const out = classify(c, [named, other], list);
    expect(out.intended.map((i) => i.why.reason)).toEqual(["ours"]);
    expect(out.unexpected).toEqual([other]);
    // the same path on another route, or of another kind, is not covered
    expect(classify({ route: "GET /ok", name: "ok" }, [named], list).unexpected).toHaveLength(1);
    expect(classify(c, [{ ...named, kind: "missing" }], list).unexpected).toHaveLength(1);
  });
});
