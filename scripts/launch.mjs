// Loads an entry module of Refinery (server/main.ts, cli/main.ts) the fast way when it can: the
// compiled JavaScript in dist/ when dist/.source-hash says it was built from exactly the sources
// on disk; otherwise the TypeScript sources through tsx (the same hooks as `node --import tsx`), so
// a missing or stale build never runs old code. `npm run build` (or `npm ci`) makes the build.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DIST, ROOT, sourceHash, STAMP } from "./sources.mjs";

/** Whether dist/ holds a complete build of the current sources. */
export function buildIsCurrent() {
  if (!existsSync(STAMP)) return false;
  return readFileSync(STAMP, "utf8").trim() === sourceHash();
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
