// Reading spec documents: JSON or YAML text, and a folder of them (REFINERY_GRAPHS_DIR).
import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { RefineryError } from "../../core/errors.ts";

export const SPEC_EXTENSIONS = [".json", ".yaml", ".yml"];

/** Parses JSON or YAML (YAML is a superset of JSON, so it reads both; JSON errors stay JSON's). */
export function parseSpecDocument(text: string, where: string, format?: "json" | "yaml"): unknown {
  const json = format === "json" || (format === undefined && /^\s*[[{]/.test(text));
  try {
    return json ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    const e = err as Error;
    const line =
      err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : "";
    throw new RefineryError(
      "invalid_config",
      `cannot parse ${json ? "JSON" : "YAML"}${line}: ${e.message.split("\n")[0]}`,
      {
        field: where,
        fix: "send a valid JSON or YAML document",
      },
    );
  }
}

export interface SpecFile {
  file: string;
  document: unknown;
}

/** Every .json/.yaml/.yml file of a folder (not recursive), in name order. */
export function readSpecFolder(dir: string): SpecFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new RefineryError(
      "invalid_config",
      `cannot read the graphs folder ${dir}: ${(err as Error).message}`,
      { field: "REFINERY_GRAPHS_DIR", fix: "point REFINERY_GRAPHS_DIR at a folder of graph specs" },
    );
  }
  return names
    .filter((n) => SPEC_EXTENSIONS.includes(extname(n).toLowerCase()))
    .sort()
    .map((n) => {
      const file = join(dir, n);
      const text = readFileSync(file, "utf8");
      const format = extname(n).toLowerCase() === ".json" ? "json" : "yaml";
      return { file, document: parseSpecDocument(text, file, format) };
    });
}
