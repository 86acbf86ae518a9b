// Generative UI bundles: langgraph.json `"ui": {"<graph>": "./src/ui.tsx"}` names a module whose
// default export maps component names to React components. Each is bundled once at start-up
// with esbuild (browser, IIFE, global `__LGUI_<graph>`), as the LangGraph server bundles them,
// so the SDK's `LoadExternalComponent` can load them (routes/generative-ui.ts): React, React DOM
// and the SDK are not bundled but taken from the page (`Symbol.for("LGUI_REQUIRE")`, which the
// SDK's `bootstrapUiContext` sets), as are the packages `ui_config.shared` names.
import { existsSync } from "node:fs";
import { basename, dirname, extname, isAbsolute, resolve } from "node:path";
import { RefineryError } from "../core/errors.ts";
import { systemAssistantId } from "../graphs/registry.ts";

export interface UiFile {
  basename: string;
  contents: Buffer;
}

export interface UiBundle {
  /** The name in langgraph.json's `ui` (the graph id the SDK asks for). */
  name: string;
  /** `__LGUI_<name>` with every character but letters and digits as `_`. */
  globalName: string;
  files: UiFile[];
}

export interface UiBundles {
  /** The bundle asked for by name, or by the system assistant id of that graph. */
  find(nameOrAssistantId: string): UiBundle | undefined;
  names(): string[];
}

/** The largest bundle (all its files) one UI may produce. */
export const MAX_UI_BUNDLE_BYTES = 16 * 1024 * 1024;

/** Modules the page provides; the SDK's require knows these (and `experimental_loadShare`'s). */
const PAGE_MODULES = ["react", "react-dom", "@langchain/langgraph-sdk"];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Bundles every UI of langgraph.json; a UI that does not build stops start-up, naming it. */
export async function bundleUis(options: {
  base: string;
  ui: Record<string, string>;
  shared?: string[];
}): Promise<UiBundles> {
  // esbuild is only needed by servers with generative UI.
  const esbuild = await import("esbuild");
  const shared = [...PAGE_MODULES, ...(options.shared ?? [])];
  const sharedFilter = new RegExp(`^(${shared.map(escapeRegExp).join("|")})(/.*)?$`);
  const bundles = new Map<string, UiBundle>();
  for (const [name, spec] of Object.entries(options.ui)) {
    const field = `ui.${name}`;
    const entry = isAbsolute(spec) ? spec : resolve(options.base, spec);
    if (!existsSync(entry)) {
      throw new RefineryError("invalid_config", `the UI module ${entry} does not exist`, {
        field,
        fix: "give the path of the UI module (.tsx/.jsx/.ts/.js) relative to langgraph.json",
      });
    }
    const globalName = `__LGUI_${name.replace(/[^a-zA-Z0-9]/g, "_")}`;
    // The renderer LoadExternalComponent calls once the script has loaded: it mounts the named
    // component into the shadow root the SDK made, through the SDK's component store.
    const contents = [
      `import components from ${JSON.stringify(entry)};`,
      `export function render(name, shadowRootId) {`,
      `  const host = document.getElementById(shadowRootId);`,
      `  const root = host && (host.shadowRoot || host);`,
      `  if (!root) return;`,
      `  const target = document.createElement("div");`,
      `  root.appendChild(target);`,
      `  globalThis[Symbol.for("LGUI_EXT_STORE")].respond(shadowRootId, components[name], target);`,
      `}`,
    ].join("\n");
    let result: Awaited<ReturnType<typeof esbuild.build>>;
    try {
      result = await esbuild.build({
        stdin: { contents, resolveDir: dirname(entry), loader: "tsx", sourcefile: "ui-entry.tsx" },
        bundle: true,
        write: false,
        outdir: resolve(options.base, ".refinery-ui", name),
        entryNames: "entrypoint",
        format: "iife",
        globalName,
        platform: "browser",
        target: "es2020",
        jsx: "automatic",
        minify: true,
        logLevel: "silent",
        define: { "process.env.NODE_ENV": '"production"' },
        loader: {
          ".png": "dataurl",
          ".jpg": "dataurl",
          ".jpeg": "dataurl",
          ".gif": "dataurl",
          ".svg": "dataurl",
          ".webp": "dataurl",
          ".woff": "dataurl",
          ".woff2": "dataurl",
        },
        plugins: [
          {
            name: "page-modules",
            setup(build) {
              build.onResolve({ filter: sharedFilter }, (args) => ({
                path: args.path,
                namespace: "lgui-page",
              }));
              build.onLoad({ filter: /.*/, namespace: "lgui-page" }, (args) => ({
                contents: `module.exports = globalThis[Symbol.for("LGUI_REQUIRE")](${JSON.stringify(args.path)});`,
                loader: "js",
              }));
            },
          },
        ],
      });
    } catch (err) {
      const first = (
        err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }
      ).errors?.[0];
      const where = first?.location ? ` (${first.location.file}:${first.location.line})` : "";
      throw new RefineryError(
        "invalid_config",
        `the UI "${name}" does not build: ${first?.text ?? (err as Error).message.split("\n")[0]}${where}`,
        {
          field,
          fix: "make the module build, and export its components as the default export: export default { Name: Component }",
          cause: err,
        },
      );
    }
    const files = (result.outputFiles ?? []).map((f) => ({
      basename: basename(f.path),
      contents: Buffer.from(f.contents),
    }));
    const size = files.reduce((n, f) => n + f.contents.length, 0);
    if (size > MAX_UI_BUNDLE_BYTES) {
      throw new RefineryError(
        "invalid_config",
        `the UI "${name}" bundles to ${size} bytes, over the limit of ${MAX_UI_BUNDLE_BYTES}`,
        {
          field,
          fix: "import less into the UI module, or list big packages the page provides in ui_config.shared",
        },
      );
    }
    bundles.set(name, { name, globalName, files });
  }
  const byAssistant = new Map([...bundles.keys()].map((n) => [systemAssistantId(n), n]));
  return {
    find: (key) => bundles.get(key) ?? bundles.get(byAssistant.get(key) ?? ""),
    names: () => [...bundles.keys()],
  };
}

/** The Content-Type of a bundled file. */
export function uiFileType(name: string): string {
  switch (extname(name)) {
    case ".js":
      return "text/javascript; charset=utf-8";
    case ".css":
      return "text/css; charset=utf-8";
    case ".map":
      return "application/json";
    default:
      return "application/octet-stream";
  }
}
