// Turns layered refine options (graph defaults < assistant config < run configurable) into the
// live objects nodes use: limits, verifiers, prompts, per-role models. Resolved settings are
// cached by their options so the nodes of one run share one set of verifiers and models.
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  DEFAULT_LIMITS,
  mergeRefineOptions,
  parseRefineOptions,
  refineOptionsFromConfigurable,
  type RefineOptions,
} from "./config.ts";
import { bindModel, DEFAULT_RETRY, type RetryPolicy } from "./models/call.ts";
import { checkOutboundUrl } from "./net/outbound.ts";
import type { ModelProvider } from "./models/provider.ts";
import type { ModelRole } from "./models/types.ts";
import { DEFAULT_PROMPTS, type PromptName, type PromptTemplate } from "./prompts.ts";
import type { ApprovalOptions } from "./approval.ts";
import type { Strategy } from "./state.ts";
import type { Limits } from "./stop-policy.ts";
import { createVerifiers, parseVerifierSpecs } from "./verifiers/index.ts";
import type { Verifier } from "./verifiers/types.ts";

export interface RefineSettings {
  strategy: Strategy;
  approval?: ApprovalOptions;
  limits: Limits;
  critique: boolean;
  verifiers: Verifier[];
  prompts: Record<PromptName, PromptTemplate>;
  retry: RetryPolicy;
  model(role: ModelRole): BaseChatModel;
  options: RefineOptions;
}

/** Graph defaults < options stored in the thread's state < the run's `configurable`. */
export type SettingsResolver = (
  config?: RunnableConfig,
  stored?: RefineOptions | null,
) => RefineSettings;

export interface SettingsResolverDeps {
  provider: ModelProvider;
  /** The graph's own defaults; assistant config and run configurable override them. */
  defaults?: RefineOptions;
  cacheSize?: number;
}

/** Prompts that take a team's override of another prompt when they have none of their own. */
const PROMPT_FALLBACK: Partial<Record<PromptName, PromptName>> = {
  critiqueTargeted: "critique",
  reviseTargeted: "revise",
};

export function buildSettings(options: RefineOptions, provider: ModelProvider): RefineSettings {
  // Refused here, so a run or assistant naming them is a 422 before anything is stored.
  provider.checkModels?.(options.models);
  if (options.approval?.webhook) {
    checkOutboundUrl(options.approval.webhook.url, "approval.webhook.url");
  }
  const retry: RetryPolicy = {
    ...DEFAULT_RETRY,
    ...(provider.deadlineMs !== undefined ? { deadlineMs: provider.deadlineMs } : {}),
    ...options.retry,
  };
  const model = (role: ModelRole) => provider.forRole(role, options.models);
  const specs = parseVerifierSpecs(options.verifiers ?? [], "verifiers");
  const needsJudge = specs.some((s) => s.kind === "llm_judge");
  const verifiers = createVerifiers(
    specs,
    needsJudge ? { judge: bindModel(model("judge"), retry) } : {},
  );
  const prompts = { ...DEFAULT_PROMPTS };
  for (const name of Object.keys(prompts) as PromptName[]) {
    // A team that wrote its own critique or revise prompt keeps it under proactive too, unless
    // it also wrote the targeted one.
    const own = options.prompts?.[name];
    const fallback = PROMPT_FALLBACK[name];
    const inherited = !own && fallback ? options.prompts?.[fallback] : undefined;
    if (own) prompts[name] = { ...DEFAULT_PROMPTS[name], ...own };
    else if (fallback && inherited) prompts[name] = { ...DEFAULT_PROMPTS[fallback], ...inherited };
  }
  return {
    strategy: options.strategy ?? "self-refine",
    approval: options.approval,
    limits: {
      maxIterations: options.maxIterations ?? DEFAULT_LIMITS.maxIterations,
      scoreThreshold: options.scoreThreshold ?? DEFAULT_LIMITS.scoreThreshold,
      tokenBudget: options.tokenBudget,
    },
    critique: options.critique ?? true,
    verifiers,
    prompts,
    retry,
    model,
    options,
  };
}

export function createSettingsResolver({
  provider,
  defaults,
  cacheSize = 256,
}: SettingsResolverDeps): SettingsResolver {
  const cache = new Map<string, RefineSettings>();
  return (config, stored) => {
    const options = mergeRefineOptions(
      defaults,
      stored ? parseRefineOptions(stored, "input.options") : undefined,
      refineOptionsFromConfigurable(config?.configurable),
    );
    const key = JSON.stringify(options);
    const hit = cache.get(key);
    if (hit) return hit;
    const settings = buildSettings(options, provider);
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
    cache.set(key, settings);
    return settings;
  };
}
