// Imports a module the user names (langgraph.json graphs, auth, http.app, declarative node kinds,
// REFINERY_PROVIDER_MODULE). User modules may be TypeScript: run from the sources, Refinery's own
// TypeScript loader (tsx, or vitest in tests) already loads them; run from the build (dist/, plain
// JavaScript), tsx is registered here first, once, the first time a TypeScript module is named.
import { pathToFileURL } from "node:url";

const TYPESCRIPT = /\.[cm]?tsx?$/i;
/** This file's own extension says whether a TypeScript loader is running it. */
const FROM_SOURCES = import.meta.url.endsWith(".ts");
let tsx: Promise<void> | undefined;

function registerTsx(): Promise<void> {
  tsx ??= (async () => {
    // The same hooks as `node --import tsx`: ES modules and CommonJS.
    const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]);
    esm.register();
    cjs.register();
  })();
  return tsx;
}

/** `import()` of the file at the absolute path `file`. */
export async function importUserModule(file: string): Promise<Record<string, unknown>> {
  if (!FROM_SOURCES && TYPESCRIPT.test(file)) await registerTsx();
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}
