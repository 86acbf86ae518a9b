// What the build compiles and the hash that ties a build to its sources. The launchers
// (scripts/launch.mjs) run dist/ only when dist/.source-hash equals the hash of the sources now;
// dist/.source-stat (names, sizes and modification times) lets them skip reading the sources
// when nothing was touched since the build.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const DIST = join(ROOT, "dist");
export const STAMP = join(DIST, ".source-hash");
export const STAT_STAMP = join(DIST, ".source-stat");
/** The directories whose TypeScript is compiled (tests, benches and the diff harness are not). */
export const SOURCE_DIRS = ["core", "nodes", "graphs", "server", "cli"];
/**
 * Files that change what the build emits, hashed with the sources: the build bundles the packages
 * too, so a different package-lock.json (other package versions) makes the build stale.
 */
const BUILD_INPUTS = [
  "tsconfig.json",
  "scripts/build.mjs",
  "scripts/sources.mjs",
  "package-lock.json",
];

/**
 * A source that resolves a file relative to its own location, which the bundle in dist/ does not
 * keep (core/paths.ts is the one place that may): build.mjs refuses to build such a source.
 */
export const SELF_RELATIVE =
  /import\.meta\.(dirname|filename)|new URL\([^)]*import\.meta\.url|createRequire\(import\.meta\.url\)(\.resolve)?\(\s*["'`]\./;

/** Every file of SOURCE_DIRS, relative to ROOT with "/" separators, sorted (read once). */
let listing;
function allFiles() {
  if (listing) return listing;
  listing = [];
  for (const dir of SOURCE_DIRS) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const rel = join(entry.parentPath ?? entry.path, entry.name).slice(ROOT.length + 1);
      listing.push(rel.split("\\").join("/"));
    }
  }
  return listing.sort();
}

/** The TypeScript sources the build compiles. */
export function sourceFiles() {
  return allFiles().filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
}

/** Plain .mjs scripts next to the sources (bin.mjs, the thread entries run from the sources). */
export function workerScripts() {
  return allFiles().filter((f) => f.endsWith(".mjs"));
}

/** Every file the hash covers. */
function hashedFiles() {
  return [...sourceFiles(), ...workerScripts(), ...BUILD_INPUTS];
}

/**
 * sha256 over the name, size and modification time of every file the hash covers: equal to the
 * one taken at build time only when no such file was added, removed or written since (a cheap
 * stat of each file instead of reading them all).
 */
export function statKey() {
  const hash = createHash("sha256");
  for (const rel of hashedFiles()) {
    const st = statSync(join(ROOT, rel), { bigint: true });
    hash.update(`${rel}\0${st.size}\0${st.mtimeNs}\0${st.ino}\0`);
  }
  return hash.digest("hex");
}

/** sha256 over the name and content of every source file and build input. */
export function sourceHash() {
  const hash = createHash("sha256");
  for (const rel of hashedFiles()) {
    hash.update(`${rel}\0`);
    hash.update(readFileSync(join(ROOT, rel)));
    hash.update("\0");
  }
  return hash.digest("hex");
}
