// Resolves the chat model for each role from the process settings and a run's `models` specs:
// an OpenAI-compatible endpoint when an API key is set, the offline simulated model otherwise.
// Models are cached per spec so a run does not rebuild clients on every node. A spec's baseURL
// must be an allowed endpoint (endpoints.ts): the API key is sent nowhere else.
import { createRequire } from "node:module";
import { join } from "node:path";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { ModelSpec, ProcessSettings, RefineOptions } from "../config.ts";
import { RefineryError } from "../errors.ts";
import { DIST, FROM_SOURCES } from "../paths.ts";
import { createEndpointCheck } from "./endpoints.ts";
import type * as OpenAIModule from "./openai.ts";
import { createSimulatedModel } from "./simulated.ts";
import type { ModelRole } from "./types.ts";

export interface ModelProvider {
  /** The model for `role`, given a run's `models` option (default spec merged with the role's). */
  forRole(role: ModelRole, models: RefineOptions["models"]): BaseChatModel;
  /** True when no API key is configured, so every default model is the simulated one. */
  readonly offline: boolean;
  /**
   * Refuses `models` naming a base URL this provider may not call (invalid_config naming the
   * field, e.g. `models.judge.baseURL`); called when a run's settings are resolved.
   */
  checkModels?(models: RefineOptions["models"]): void;
  /** `retry.deadlineMs` for runs that set none (REFINERY_MODEL_DEADLINE_MS). */
  readonly deadlineMs?: number;
}

const ROLES = ["default", "generate", "critique", "revise", "judge"] as const;

/**
 * ./openai.ts loads the OpenAI client (about 230 modules, a fifth of what a thread loads), so it
 * is loaded when the first OpenAI-compatible model is built, never in an offline process. From
 * the build (dist/, JavaScript) that is a synchronous require() of its bundle entry
 * dist/core/openai.js (an ES module; Node >= 20.19), which shares the chunks, and so the module
 * instances, already imported. From the sources (tsx, vitest), where require() would load
 * TypeScript as CommonJS with its own copies of the packages, it is imported up front, as before.
 */
let openai: typeof OpenAIModule | undefined = FROM_SOURCES
  ? await import("./openai.ts")
  : undefined;

function createOpenAIModel(opts: OpenAIModule.OpenAIModelOptions) {
  openai ??= createRequire(import.meta.url)(join(DIST, "core", "openai.js")) as typeof OpenAIModule;
  return openai.createOpenAIModel(opts);
}

export function createModelProvider(
  settings: Pick<
    ProcessSettings,
    "apiKey" | "baseURL" | "model" | "modelEndpoints" | "modelTimeoutMs" | "modelDeadlineMs"
  >,
): ModelProvider {
  const cache = new Map<string, BaseChatModel>();
  const offline = !settings.apiKey;
  const checkEndpoint = createEndpointCheck(settings);

  function build(spec: ModelSpec, field: string): BaseChatModel {
    const provider = spec.provider ?? (offline ? "simulated" : "openai");
    if (provider === "simulated") return createSimulatedModel(spec.simulated ?? {});
    if (!settings.apiKey) {
      throw new RefineryError(
        "invalid_config",
        "an OpenAI-compatible model was requested but no API key is set",
        {
          field: "models.provider",
          fix: 'set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI endpoint), or use provider "simulated"',
        },
      );
    }
    checkEndpoint(spec.baseURL, field);
    return createOpenAIModel({
      apiKey: settings.apiKey,
      baseURL: spec.baseURL ?? settings.baseURL,
      model: spec.model ?? settings.model,
      temperature: spec.temperature,
      timeoutMs: spec.timeoutMs ?? settings.modelTimeoutMs,
      maxTokens: spec.maxTokens,
      seed: spec.seed,
      n: spec.n,
    });
  }

  return {
    offline,
    ...(settings.modelDeadlineMs !== undefined ? { deadlineMs: settings.modelDeadlineMs } : {}),
    checkModels(models) {
      for (const role of ROLES) checkEndpoint(models?.[role]?.baseURL, `models.${role}.baseURL`);
    },
    forRole(role, models) {
      const spec: ModelSpec = { ...models?.default, ...models?.[role] };
      const key = JSON.stringify(spec);
      let model = cache.get(key);
      if (!model) {
        const from = models?.[role]?.baseURL !== undefined ? role : "default";
        model = build(spec, `models.${from}.baseURL`);
        cache.set(key, model);
      }
      return model;
    },
  };
}
