#!/usr/bin/env node
// `npm run build` (also npm's `prepare`, so `npm ci` runs it): compiles the TypeScript of core/,
// nodes/, graphs/, server/ and cli/ to JavaScript in dist/, one .js file per .ts file in the same
// layout (relative imports rewritten from .ts to .js, packages left as imports), then writes
// dist/.source-hash. `npm start`, the `refinery` bin and the run/eval threads run dist/ when that
// hash matches the sources, and the sources through tsx otherwise (scripts/launch.mjs).
import { rmSync, writeFileSync } from "node:fs";
import { build } from "esbuild";
import { DIST, ROOT, sourceFiles, sourceHash, STAMP } from "./sources.mjs";

const started = performance.now();
const hash = sourceHash();
const files = sourceFiles();
rmSync(DIST, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: files,
  outdir: DIST,
  outbase: ROOT,
  // Bundling only so that the plugin below sees every import; each one is left external.
  bundle: true,
  packages: "external",
  platform: "node",
  format: "esm",
  target: "node20.19",
  charset: "utf8",
  logLevel: "warning",
  plugins: [
    {
      name: "one-file-per-module",
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          if (args.kind === "entry-point") return undefined;
          if (!args.path.endsWith(".ts")) {
            throw new Error(`${args.importer}: relative import ${args.path} is not a .ts file`);
          }
          return { path: `${args.path.slice(0, -3)}.js`, external: true };
        });
      },
    },
  ],
});
// The stamp goes last: an interrupted build leaves no stamp, so the launchers run the sources.
writeFileSync(STAMP, `${hash}\n`);
console.log(
  `refinery: built ${files.length} modules into dist/ in ${Math.round(performance.now() - started)} ms`,
);
