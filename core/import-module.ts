// Imports a module the user names (langgraph.json graphs, auth, http.app, declarative node kinds,
// REFINERY_PROVIDER_MODULE). User modules may be TypeScript: run from the sources, Refinery's own
// TypeScript loader (tsx, or vitest in tests) already loads them; run from the build (dist/, plain
// JavaScript), tsx is registered here first, once, the first time a TypeScript module is named.
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { RefineryError } from "./errors.ts";
import { FROM_SOURCES } from "./paths.ts";

const TYPESCRIPT = /\.[cm]?tsx?$/i;
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

/**
 * A module spec as langgraph.json writes it: "./file.ts:name", or "./file.ts" for the default
 * export. A colon followed by a path ("C:\…" on Windows) is part of the file, not an export.
 */
export function parseModuleSpec(spec: string): { file: string; name: string } {
  const cut = spec.lastIndexOf(":");
  const hasExport = cut > 1 && !/[\\/]/.test(spec.slice(cut + 1));
  return hasExport
    ? { file: spec.slice(0, cut), name: spec.slice(cut + 1) }
    : { file: spec, name: "default" };
}

/**
 * Imports the module a spec names, relative to `base` (the langgraph.json's folder). A module that
 * does not load is an `invalid_config` naming `field` and saying what it was (`what`).
 */
export async function importModuleSpec(
  base: string,
  spec: string,
  field: string,
  what: string,
): Promise<{ abs: string; name: string; mod: Record<string, unknown> }> {
  const { file, name } = parseModuleSpec(spec);
  const abs = isAbsolute(file) ? file : resolve(base, file);
  try {
    return { abs, name, mod: await importUserModule(abs) };
  } catch (err) {
    throw new RefineryError(
      "invalid_config",
      `cannot load ${what} from ${abs}: ${(err as Error).message.split("\n")[0]}`,
      {
        field,
        fix: "check the path (relative to langgraph.json) and that the file compiles",
        cause: err,
      },
    );
  }
}
