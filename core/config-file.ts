// Reads a Refinery config file (JSON or YAML): process settings (database, model endpoint) plus
// the default refine options. Errors name the file and the offending field.
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { RefineOptionsSchema, type RefineOptions } from "./config.ts";
import { fromZodError, RefineryError } from "./errors.ts";

export const ConfigFileSchema = RefineOptionsSchema.extend({
  db: z.string().min(1).optional().describe("SQLite file for checkpoints (REFINERY_DB overrides)."),
  model: z.string().min(1).optional().describe("Default model name (REFINERY_MODEL overrides)."),
  baseURL: z.url().optional().describe("OpenAI-compatible base URL (OPENAI_BASE_URL overrides)."),
  assistant: z
    .string()
    .min(1)
    .optional()
    .describe("Assistant (UUID) of the refine graph whose options the CLI's runs start from."),
}).strict();

export interface ConfigFile {
  db?: string;
  model?: string;
  baseURL?: string;
  assistant?: string;
  refine: RefineOptions;
}

export function loadConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RefineryError(
      "invalid_config",
      `cannot read config file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      {
        field: "--config",
        fix: "pass the path of an existing .json or .yaml file",
      },
    );
  }
  let data: unknown;
  try {
    data = [".yaml", ".yml"].includes(extname(path).toLowerCase())
      ? parseYaml(text)
      : JSON.parse(text);
  } catch (err) {
    throw new RefineryError(
      "invalid_config",
      `config file ${path} is not valid ${extname(path) || "JSON"}: ${(err as Error).message.split("\n")[0]}`,
      {
        field: "--config",
        fix: "fix the syntax error (JSON, or YAML for .yaml/.yml files)",
      },
    );
  }
  const result = ConfigFileSchema.safeParse(data ?? {});
  if (!result.success) {
    const err = fromZodError(result.error, "", "invalid_config", ConfigFileSchema);
    throw new RefineryError("invalid_config", `${path}: ${err.message}`, {
      field: err.field,
      fix: err.fix ?? "see README, Configuration",
    });
  }
  const { db, model, baseURL, assistant, ...refine } = result.data;
  return { db, model, baseURL, assistant, refine };
}
