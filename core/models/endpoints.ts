// Which OpenAI-compatible endpoints a run may name in `models.*.baseURL`: the operator's own
// (OPENAI_BASE_URL, else the OpenAI API) and those listed in REFINERY_MODEL_ENDPOINTS. The
// server's API key goes with every model call, so any other base URL is refused. URLs are
// compared normalised: scheme and host in lower case, default port dropped, no trailing slash.
import { RefineryError } from "../errors.ts";

export const MODEL_ENDPOINTS_ENV = "REFINERY_MODEL_ENDPOINTS";

/** ChatOpenAI's base URL when none is configured. */
export const OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1";

/** Base URLs a run may name besides the operator's, or "any" (the CLI: its user is the operator). */
export type ModelEndpoints = readonly string[] | "any";

/** The comparable form of a base URL; undefined when it is not an http(s) URL. */
export function normalizeEndpoint(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  const credentials = url.username || url.password ? `${url.username}:${url.password}@` : "";
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.protocol}//${credentials}${url.host}${path}${url.search}`;
}

/** Parses REFINERY_MODEL_ENDPOINTS (comma-separated base URLs). */
export function parseModelEndpoints(raw: string | undefined): string[] {
  const endpoints: string[] = [];
  for (const item of (raw ?? "").split(",")) {
    const text = item.trim();
    if (text === "") continue;
    const normalized = normalizeEndpoint(text);
    if (!normalized) {
      throw new RefineryError(
        "invalid_config",
        `${MODEL_ENDPOINTS_ENV} entry ${JSON.stringify(text)} is not an http(s) URL`,
        {
          field: MODEL_ENDPOINTS_ENV,
          fix: "list base URLs separated by commas, e.g. http://10.0.0.7:8000/v1,https://llm.internal/v1",
        },
      );
    }
    endpoints.push(normalized);
  }
  return endpoints;
}

/**
 * A check for the base URLs runs name: throws invalid_config naming `field` when `baseURL` is
 * neither the operator's endpoint nor a listed one. An absent baseURL means the operator's.
 */
export function createEndpointCheck(settings: {
  baseURL?: string;
  modelEndpoints?: ModelEndpoints;
}): (baseURL: string | undefined, field: string) => void {
  const listed = settings.modelEndpoints ?? [];
  if (listed === "any") return () => undefined;
  const allowed = new Set(
    [settings.baseURL ?? OPENAI_DEFAULT_BASE_URL, ...listed]
      .map(normalizeEndpoint)
      .filter((u): u is string => u !== undefined),
  );
  return (baseURL, field) => {
    if (baseURL === undefined) return;
    const normalized = normalizeEndpoint(baseURL);
    if (normalized && allowed.has(normalized)) return;
    throw new RefineryError(
      "invalid_config",
      `${baseURL} is not a model endpoint this server may send its API key to`,
      {
        field,
        fix: `omit baseURL to use the server's endpoint, or have the operator list it in ${MODEL_ENDPOINTS_ENV}`,
      },
    );
  };
}
