#!/usr/bin/env node
// `npm run build` (also npm's `prepare`, so `npm ci` runs it): bundles the TypeScript of core/,
// nodes/, graphs/, server/ and cli/ with the packages it imports into JavaScript in dist/, then
// writes dist/.source-hash. `npm start`, the `refinery` bin and the run/eval threads run dist/ when
// that hash matches the sources, and the sources through tsx otherwise (scripts/launch.mjs).
//
// One esbuild build with code splitting over the entries below: each entry is one file
// (dist/cli/main.js, ...) and the code two or more entries share, packages included, is in
// dist/chunks/. A process then loads a few dozen files instead of ~700 modules of node_modules
// (module resolution and per-module work were most of an offline `refinery run`). Left as imports:
// native addons and the packages only needed for TypeScript the user brings (EXTERNAL).
//
// Every output file is exactly two directories below the project root, where core/paths.ts
// expects its own code to be (it finds the root, web/ and the thread entries from there); the
// build fails if a source resolves a path relative to its own import.meta.url instead.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { build } from "esbuild";
import {
  DIST,
  ROOT,
  SELF_RELATIVE,
  sourceFiles,
  sourceHash,
  STAMP,
  statKey,
  STAT_STAMP,
} from "./sources.mjs";

/** Bundle entries: source → output name under dist/ (launch.mjs maps x/y.ts to dist/x/y.js). */
const ENTRIES = [
  { in: "cli/main.ts", out: "cli/main" }, // the refinery bin (cli/bin.mjs)
  { in: "server/main.ts", out: "server/main" }, // npm start (scripts/server.mjs)
  { in: "server/run-thread.ts", out: "server/run-thread" }, // run threads (server/thread-entry.ts)
  { in: "server/eval-thread.ts", out: "server/eval-thread" }, // eval threads
  { in: "core/models/openai.ts", out: "core/openai" }, // require()d on the first OpenAI model
];

/**
 * Packages left as imports: native addons (better-sqlite3; pg's optional pg-native), the
 * TypeScript tooling loaded only for TypeScript the user brings (tsx, esbuild, typescript), and
 * optional native helpers of ws.
 */
const EXTERNAL = [
  "better-sqlite3",
  "pg-native",
  "tsx",
  "esbuild",
  "typescript",
  "bufferutil",
  "utf-8-validate",
];

const started = performance.now();
const hash = sourceHash();
const stat = statKey();
const files = sourceFiles();
for (const file of files) {
  if (file === "core/paths.ts") continue;
  if (SELF_RELATIVE.test(readFileSync(join(ROOT, file), "utf8"))) {
    throw new Error(
      `${file}: resolves a path relative to its own import.meta.url, which the bundle in dist/ does not keep; use ROOT/DIST from core/paths.ts`,
    );
  }
}
rmSync(DIST, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ENTRIES,
  outdir: DIST,
  entryNames: "[dir]/[name]",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  external: EXTERNAL,
  platform: "node",
  format: "esm",
  target: "node20.19",
  charset: "utf8",
  // Licence comments of the bundled packages stay, gathered at the end of each file.
  legalComments: "eof",
  // CommonJS packages in an ES module bundle: their require() of Node's modules and of the
  // external packages goes through a real require.
  banner: {
    js: 'import { createRequire as __refineryCreateRequire } from "node:module";\nconst require = __refineryCreateRequire(import.meta.url);',
  },
  metafile: true,
  logLevel: "warning",
});
// What went where, for a look at the bundle (e.g. with esbuild's analyzer): REFINERY_BUILD_METAFILE.
if (process.env.REFINERY_BUILD_METAFILE) {
  writeFileSync(process.env.REFINERY_BUILD_METAFILE, JSON.stringify(result.metafile));
}
for (const out of Object.keys(result.metafile.outputs)) {
  const rel = relative(DIST, join(ROOT, out)).split("\\").join("/");
  if (!/^[^/]+\/[^/]+$/.test(rel)) {
    throw new Error(`dist/${rel}: every output must be one directory deep (see core/paths.ts)`);
  }
}
// The stamps go last: an interrupted build leaves none, so the launchers run the sources.
writeFileSync(STAT_STAMP, `${stat}\n`);
writeFileSync(STAMP, `${hash}\n`);
const outputs = Object.keys(result.metafile.outputs).length;
console.log(
  `refinery: bundled ${files.length} modules and their packages into ${outputs} files in dist/ in ${Math.round(performance.now() - started)} ms`,
);
