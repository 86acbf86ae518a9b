// The bench model's replies (bench/server-graph.ts serverBenchReply) from an OpenAI-compatible
// HTTP server on 127.0.0.1 in the bench's own process (test/support/openai-stub.ts), for servers
// measured as deployed: their built-in OpenAI provider calls it like any endpoint, and nothing of
// the bench is loaded into them.
import type { BaseMessage } from "@langchain/core/messages";
import { roleOf, startOpenAIStub } from "../test/support/openai-stub.ts";
import { serverBenchReply } from "./server-graph.ts";

export interface BenchStub {
  /** Base URL including `/v1` (OPENAI_BASE_URL). */
  url: string;
  /** Chat completions answered so far. */
  calls(): number;
  close(): Promise<void>;
}

export async function startBenchStub(): Promise<BenchStub> {
  const stub = await startOpenAIStub();
  let calls = 0;
  stub.setHandler((body) => {
    // The stub keeps every request for tests to read; a bench of thousands of runs needs none.
    stub.requests.length = 0;
    calls++;
    const role = roleOf(body);
    const messages = (body.messages ?? []) as unknown as BaseMessage[];
    return { content: serverBenchReply(role === "unknown" ? "generate" : role, messages) };
  });
  return { url: stub.url, calls: () => calls, close: () => stub.close() };
}
