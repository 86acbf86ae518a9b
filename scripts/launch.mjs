// Loads an entry module of Refinery (server/main.ts, cli/main.ts) the fast way when it can: the
// compiled JavaScript in dist/ when dist/.source-hash says it was built from exactly the sources
// on disk; otherwise the TypeScript sources through tsx (the same hooks as `node --import tsx`), so
// a missing or stale build never runs old code. `npm run build` (or `npm ci`) makes the build.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DIST, ROOT, sourceHash, STAMP, statKey, STAT_STAMP } from "./sources.mjs";

const read = (file) => (existsSync(file) ? readFileSync(file, "utf8").trim() : undefined);

/**
 * Whether dist/ holds a complete build of the current sources. When no source was touched since
 * the build (same names, sizes and modification times as dist/.source-stat) the sources are not
 * read; otherwise their content hash decides (a checkout that rewrote unchanged files is still
 * current, and its stat key is recorded for the next start when dist/ is writable).
 */
export function buildIsCurrent() {
  const stamp = read(STAMP);
  if (!stamp) return false;
  const stat = statKey();
  if (read(STAT_STAMP) === stat) return true;
  if (stamp !== sourceHash()) return false;
  try {
    writeFileSync(STAT_STAMP, `${stat}\n`);
  } catch {
    // a read-only install: the hash is checked at every start
  }
  return true;
}

/** import() of `entry` (a source path relative to the project root, e.g. "server/main.ts"). */
export async function launch(entry) {
  if (buildIsCurrent()) {
    return import(pathToFileURL(join(DIST, entry.replace(/\.ts$/, ".js"))).href);
  }
  if (existsSync(STAMP)) {
    process.stderr.write(
      "refinery: dist/ was built from other sources; running the TypeScript sources instead (slower start; `npm run build` updates dist/)\n",
    );
  }
  const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]);
  esm.register();
  cjs.register();
  return import(pathToFileURL(join(ROOT, entry)).href);
}
