// Lint configuration: typescript-eslint recommended rules plus the one-way import rule
// (server -> graphs -> nodes -> core) that keeps the layers honest, and no bare fetch outside
// core/net/ (requests made on a caller's behalf go through the guarded outbound client).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const layer = (from, forbidden) => ({
  files: [`${from}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: forbidden.map((dir) => ({
          group: [`**/${dir}/*`, `../${dir}`, `../../${dir}`],
          message: `${from}/ must not import from ${dir}/ (imports flow server -> graphs -> nodes -> core).`,
        })),
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ["node_modules/**", "data/**", "dist/**", "web/dist/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    files: ["server/**/*.ts", "graphs/**/*.ts", "nodes/**/*.ts", "core/**/*.ts"],
    ignores: ["core/net/**"],
    rules: {
      "no-restricted-globals": [
        "error",
        {
          name: "fetch",
          message:
            "Use the outbound client of core/net/outbound.ts: it applies the outbound policy (REFINERY_OUTBOUND_ALLOW), timeouts and size caps.",
        },
      ],
      "no-restricted-properties": [
        "error",
        {
          object: "globalThis",
          property: "fetch",
          message: "Use the outbound client of core/net/outbound.ts.",
        },
      ],
    },
  },
  layer("core", ["nodes", "graphs", "server", "cli"]),
  layer("nodes", ["graphs", "server", "cli"]),
  layer("graphs", ["server", "cli"]),
  {
    // The web console (web/) and the useStream test page: plain ES modules run in the browser.
    files: ["web/**/*.js", "test/fixtures/use-stream/*.js"],
    languageOptions: {
      globals: Object.fromEntries(
        [
          "window document location fetch URL URLSearchParams FormData Node Event AbortController",
          "TextDecoderStream requestAnimationFrame cancelAnimationFrame sessionStorage localStorage",
          "setTimeout clearTimeout setInterval clearInterval",
        ]
          .flatMap((names) => names.split(" "))
          .map((name) => [name, "readonly"]),
      ),
    },
  },
  {
    files: ["cli/bin.mjs", "scripts/*.mjs", "eslint.config.js"],
    languageOptions: {
      globals: { process: "readonly", console: "readonly", performance: "readonly" },
    },
  },
);
