// Where Refinery's own files are, for code run from the TypeScript sources (tsx, vitest) and from
// the build alike. The build (scripts/build.mjs) bundles the sources into dist/ with every output
// file exactly two directories below the project root (dist/cli/main.js, dist/chunks/x.js, ...),
// while this file sits one below it (core/paths.ts), so the root is one level up from here in the
// sources and two levels up from whichever bundle file this code lands in. Code that needs a file
// of the project (web/, package.json, a thread's entry) asks here instead of resolving a path
// relative to its own import.meta.url, which a bundle does not keep.
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * True when this code runs from the TypeScript sources (tsx, vitest), false from dist/. The path
 * is read without the URL's query: tsx's namespaced imports (a run thread loading the sources)
 * add one (`paths.ts?tsx-namespace=...`).
 */
export const FROM_SOURCES = new URL(import.meta.url).pathname.endsWith(".ts");

/** The project root (the folder of package.json). */
export const ROOT = fileURLToPath(new URL(FROM_SOURCES ? ".." : "../..", import.meta.url));

/** The build output folder. */
export const DIST = join(ROOT, "dist");
