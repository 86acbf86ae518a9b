// What the build compiles and the hash that ties a build to its sources. The launchers
// (scripts/launch.mjs) run dist/ only when dist/.source-hash equals the hash of the sources now.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const DIST = join(ROOT, "dist");
export const STAMP = join(DIST, ".source-hash");
/** The directories whose TypeScript is compiled (tests, benches and the diff harness are not). */
export const SOURCE_DIRS = ["core", "nodes", "graphs", "server", "cli"];
/** Files that change what the build emits, hashed with the sources. */
const BUILD_INPUTS = ["tsconfig.json", "scripts/build.mjs", "scripts/sources.mjs"];

/** Files of SOURCE_DIRS whose name passes `keep`, relative to ROOT with "/" separators, sorted. */
function filesIn(keep) {
  const files = [];
  for (const dir of SOURCE_DIRS) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !keep(entry.name)) continue;
      const rel = join(entry.parentPath ?? entry.path, entry.name).slice(ROOT.length + 1);
      files.push(rel.split("\\").join("/"));
    }
  }
  return files.sort();
}

/** The TypeScript sources the build compiles. */
export function sourceFiles() {
  return filesIn((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"));
}

/** Plain .mjs worker scripts next to the sources (dist/ gets a module that imports each). */
export function workerScripts() {
  return filesIn((name) => name.endsWith(".mjs"));
}

/** sha256 over the name and content of every source file and build input. */
export function sourceHash() {
  const hash = createHash("sha256");
  for (const rel of [...sourceFiles(), ...workerScripts(), ...BUILD_INPUTS]) {
    hash.update(`${rel}\0`);
    hash.update(readFileSync(join(ROOT, rel)));
    hash.update("\0");
  }
  return hash.digest("hex");
}
