// The build's contract with the code (scripts/build.mjs, core/paths.ts): the project root is
// found from the sources, no source resolves a file relative to its own location (the bundle in
// dist/ does not keep it; the build refuses such a source), and the launcher's stat key and
// content hash cover the same files.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DIST, FROM_SOURCES, ROOT } from "../../core/paths.ts";
// @ts-expect-error: a plain .mjs script without types
import { SELF_RELATIVE, sourceFiles, statKey } from "../../scripts/sources.mjs";

describe("core/paths.ts", () => {
  it("finds the project root and dist/ from the sources", () => {
    expect(FROM_SOURCES).toBe(true);
    expect(existsSync(join(ROOT, "package.json"))).toBe(true);
    expect(existsSync(join(ROOT, "web"))).toBe(true);
    expect(DIST).toBe(join(ROOT, "dist"));
  });
});

describe("sources", () => {
  it("resolve no path relative to their own import.meta.url (the build's check)", () => {
    const selfRelative = SELF_RELATIVE as RegExp;
    const offenders = (sourceFiles() as string[]).filter(
      (f) => f !== "core/paths.ts" && selfRelative.test(readFileSync(join(ROOT, f), "utf8")),
    );
    expect(offenders).toEqual([]);
  });

  it("have a stat key that does not change while no file changes", () => {
    expect(statKey()).toBe(statKey());
  });
});
