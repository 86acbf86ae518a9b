// The `revise` node: rewrites the newest draft from the critique, every failed verifier's
// message and any human feedback. Under proactive it is targeted: only the failing parts
// change. An identical revision ends the loop (nothing would change).
import type { RunnableConfig } from "@langchain/core/runnables";
import { callModel } from "../core/models/call.ts";
import type { SettingsResolver } from "../core/settings.ts";
import {
  critiqueFor,
  latestDraft,
  verdictsFor,
  type Draft,
  type RefineStateType,
  type RefineUpdate,
} from "../core/state.ts";
import { decideAfterRevise } from "../core/stop-policy.ts";
import { nodeUsage } from "../core/usage.ts";
import {
  buildMessages,
  emit,
  gateForApproval,
  promptVariables,
  stopOnModelFailure,
} from "./support.ts";

export interface ReviseNodeOptions {
  settings: SettingsResolver;
}

export function createReviseNode({ settings }: ReviseNodeOptions) {
  return async function revise(
    state: RefineStateType,
    config: RunnableConfig,
  ): Promise<RefineUpdate> {
    const s = settings(config, state.options);
    const strategy = state.strategy ?? s.strategy;
    const previous = latestDraft(state);
    if (!previous) return {};
    const critique = critiqueFor(state, previous.iteration);
    const failed = verdictsFor(state, previous.iteration).filter((v) => !v.pass);
    const targeted = strategy !== "self-refine";
    const issues = critique?.issues.length ? critique.issues.map((i) => `- ${i}`).join("\n") : "";
    const checks = failed
      .map((v) => `- [${v.verifierId}${v.hard ? "" : ", soft"}] ${v.message}`)
      .join("\n");
    const messages = buildMessages(targeted ? s.prompts.reviseTargeted : s.prompts.revise, {
      ...promptVariables(state),
      draft: previous.text,
      critique: issues || "(no critique issues)",
      failed_checks: checks || "(all checks passed)",
    });
    let result;
    try {
      result = await callModel(s.model("revise"), messages, {
        role: "revise",
        config,
        retry: s.retry,
        signal: config.signal,
      });
    } catch (err) {
      return stopOnModelFailure(err, "revise", state, config);
    }
    const iteration = previous.iteration + 1;
    const draft: Draft = {
      iteration,
      text: result.text,
      source: "revise",
      usage: result.usage,
      latencyMs: result.latencyMs,
      createdAt: new Date().toISOString(),
    };
    const decision = decideAfterRevise(previous.text, result.text);
    emit(config, {
      type: "draft",
      node: "revise",
      iteration,
      text: result.text,
      usage: result.usage,
      latencyMs: result.latencyMs,
    });
    const update: RefineUpdate = {
      drafts: draft,
      iteration,
      usage: nodeUsage("revise", result.usage),
      ...(targeted ? { route: "verify" as const } : {}),
    };
    if (decision.action !== "stop") return update;
    const best = state.best;
    const point = {
      iteration,
      hardPassed: best?.hardPassed ?? 0,
      hardTotal: best?.hardTotal ?? 0,
      score: best?.score ?? 0,
    };
    return gateForApproval(state, s.approval, point, {
      ...update,
      route: undefined,
      stopReason: decision.reason,
      answer: best?.text ?? previous.text,
    });
  };
}
