// A model call must not leave anything reachable from the process once it ends, whatever the
// SDK under it does with the signal it is given. The openai SDK adds an "abort" listener (a
// closure over its per-request AbortController) to that signal and never removes it; Node keeps
// an AbortSignal.any() composite with a listener in a process-wide set until it aborts. Before
// core/abort.ts, every call handed the SDK such a composite (the node's signal and the call's
// 120 s deadline), and the server's RSS grew by about 20 MiB per 1,000 runs.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { describe, expect, it } from "vitest";
import { callModel } from "../../core/models/call.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Answers at once, and treats the signal as the openai SDK does (fetchWithTimeout). */
class ListenerLeavingModel extends BaseChatModel {
  readonly controllers: WeakRef<AbortController>[] = [];
  _llmType() {
    return "listener-leaving";
  }
  async _generate(
    _messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    const controller = new AbortController();
    options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
    this.controllers.push(new WeakRef(controller));
    const message = new AIMessage("Answer: 4");
    return { generations: [{ text: "Answer: 4", message }] };
  }
}

describe("model calls and the signals under them", () => {
  it("leave nothing the SDK attached to their signal reachable once they end", async () => {
    const model = new ListenerLeavingModel({});
    const run = new AbortController(); // lives as long as the process, as a worker's might
    for (let i = 0; i < 20; i++) {
      // With the default retry policy: its 120 s deadline is a second signal to combine.
      const step = new AbortController();
      await callModel(model, [new HumanMessage("What is 2 + 2?")], {
        role: "generate",
        signal: run.signal,
        config: { signal: step.signal },
      });
    }
    expect(model.controllers).toHaveLength(20);
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    const alive = model.controllers.filter((ref) => ref.deref() !== undefined).length;
    expect(alive).toBe(0);
  });
});
