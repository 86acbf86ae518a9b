// The workload of the server bench (npm run bench:server), shared by the in-process runner, our
// server's child process and the reference server's graph file: the real `refine` graph with a
// model that answers after a fixed latency (0 = at once), configured so every run executes
// generate + 3 x (critique + verify) + 2 x revise = 9 nodes and 6 model calls.
// The `graph` export is what the reference server (@langchain/langgraph-api) loads; it reads the
// model latency from BENCH_MODEL_LATENCY_MS and replaces the checkpointer with its own.
import { randomBytes } from "node:crypto";
import type { BaseMessage } from "@langchain/core/messages";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type { RefineOptions } from "../core/config.ts";
import type { ModelProvider } from "../core/models/provider.ts";
import { createSettingsResolver } from "../core/settings.ts";
import { createRefineGraph } from "../graphs/refine.ts";
import { BenchChatModel, type BenchReply } from "./support.ts";

export const TASK = "What is 2 + 2?";
export const EXPECTED_NODE_RUNS = 9;
export const EXPECTED_MODEL_CALLS = 6;

/**
 * Refine options every run carries in `config.configurable` (on all three variants alike):
 * 3 drafts at most, an answer_match verifier the drafts never satisfy, no model retries.
 */
export const RUN_OPTIONS: RefineOptions = {
  maxIterations: 3,
  verifiers: [{ kind: "answer_match", expected: 4 }],
  retry: { retries: 0, baseDelayMs: 0 },
};

/**
 * Generate answers 3, every critique asks for a revision, and a revision answers 5 unless the
 * draft it revises says 5 (then 6). Unlike the engine bench's counter this is a pure function
 * of the prompt, so concurrent runs sharing one model still never repeat a draft, never match,
 * and every run stops at the iteration cap.
 */
export const serverBenchReply: BenchReply = (role, messages) => {
  if (role === "critique")
    return '{"verdict":"revise","score":0.3,"issues":["the final answer is wrong"]}';
  if (role === "revise") {
    const prompt = messages.map((m: BaseMessage) => String(m.content)).join("\n");
    const answers = [...prompt.matchAll(/Answer: (\d+)/g)];
    const last = answers[answers.length - 1]?.[1];
    return `Let me fix that.\nAnswer: ${last === "5" ? 6 : 5}`;
  }
  return "Two plus two.\nAnswer: 3";
};

/**
 * serverBenchReply with `bytes` of new text in every reply (base64 of random bytes, different in
 * each call, so nothing of it compresses against earlier text or repeats): after the answer line
 * of a draft, inside the critique's issue. For bench:storage-linear, which varies the text a run
 * produces; the drafts' answers and so the run's course stay as serverBenchReply's.
 */
export function paddedBenchReply(bytes: number): BenchReply {
  if (bytes <= 0) return serverBenchReply;
  const pad = () =>
    randomBytes(Math.ceil((bytes * 3) / 4))
      .toString("base64")
      .slice(0, bytes);
  return (role, messages) => {
    const reply = serverBenchReply(role, messages);
    if (role === "critique")
      return reply.replace("the final answer is wrong", `the final answer is wrong ${pad()}`);
    return `${reply}\n${pad()}`;
  };
}

/**
 * A task containing this is answered at once by LatencyBenchModel: bench:cluster warms up fresh
 * worker processes (their JIT) with runs that do not wait for the model, then times runs that do.
 */
export const NO_LATENCY_MARK = "[bench warm-up: no model latency]";

/**
 * BenchChatModel that waits `latencyMs` before answering (a remote model's round trip), unless
 * the call's messages carry NO_LATENCY_MARK (every prompt of the refine graph carries the task).
 */
export class LatencyBenchModel extends BenchChatModel {
  constructor(
    reply: BenchReply,
    private readonly latencyMs: number,
  ) {
    super(reply);
  }

  override async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): ReturnType<BenchChatModel["_generate"]> {
    const warmUp = messages.some((m) => String(m.content).includes(NO_LATENCY_MARK));
    if (this.latencyMs > 0 && !warmUp) await new Promise((r) => setTimeout(r, this.latencyMs));
    return super._generate(messages, options);
  }
}

export function createBenchModel(latencyMs = 0, padBytes = 0): BenchChatModel {
  const reply = paddedBenchReply(padBytes);
  return latencyMs > 0 ? new LatencyBenchModel(reply, latencyMs) : new BenchChatModel(reply);
}

/** A provider that hands every role the same bench model. */
export function createBenchProvider(model: BenchChatModel): ModelProvider {
  return { offline: false, forRole: () => model };
}

/**
 * The bench provider as a provider module (REFINERY_PROVIDER_MODULE=bench/server-graph.ts#benchProvider),
 * which is how it reaches our server's run threads; BENCH_MODEL_LATENCY_MS sets the latency,
 * BENCH_MODEL_PAD_BYTES the new text in each reply (paddedBenchReply; default none).
 */
export function benchProvider(env: Record<string, string | undefined>): ModelProvider {
  return createBenchProvider(
    createBenchModel(
      Number(env.BENCH_MODEL_LATENCY_MS ?? 0),
      Number(env.BENCH_MODEL_PAD_BYTES ?? 0),
    ),
  );
}

/** The refine graph as the in-process variant and the reference server run it. */
export function createBenchGraph(model: BenchChatModel, checkpointer?: BaseCheckpointSaver) {
  const settings = createSettingsResolver({ provider: createBenchProvider(model) });
  return createRefineGraph({ settings, checkpointer });
}

/** Loaded by the reference server through its langgraph.json-style `graphs` spec. */
export const graph = createBenchGraph(
  createBenchModel(Number(process.env.BENCH_MODEL_LATENCY_MS ?? 0)),
);
