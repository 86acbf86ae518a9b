// Deterministic graphs served by both servers in the differential harness (npm run diff:langgraph):
// no model, no clock, no randomness, so both servers must answer the same corpus the same way.
// `echo` appends one entry per node, `approval` interrupts for a decision, `slow` waits
// `delayMs` in each of its steps (multitask strategies, cancel), `chat` streams a message from a
// fake chat model (messages stream modes) and `custom` writes custom stream events.
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import {
  Annotation,
  END,
  interrupt,
  type LangGraphRunnableConfig,
  MessagesAnnotation,
  START,
  StateGraph,
} from "@langchain/langgraph";

const State = Annotation.Root({
  topic: Annotation<string>({ reducer: (_l, r) => r, default: () => "" }),
  log: Annotation<string[], string | string[]>({
    reducer: (l, r) => l.concat(r),
    default: () => [],
  }),
  delayMs: Annotation<number>({ reducer: (_l, r) => r, default: () => 0 }),
  decision: Annotation<unknown>({ reducer: (_l, r) => r, default: () => null }),
});

export const echo = new StateGraph(State)
  .addNode("first", (s) => ({ log: `first:${s.topic}` }))
  .addNode("second", (s) => ({ log: `second:${s.topic}` }))
  .addEdge(START, "first")
  .addEdge("first", "second")
  .addEdge("second", END)
  .compile();

export const approval = new StateGraph(State)
  .addNode("draft", (s) => ({ log: `draft:${s.topic}` }))
  .addNode("review", (s) => {
    const decision = interrupt({ question: "approve?", draft: s.log.at(-1) });
    return { decision, log: `review:${JSON.stringify(decision)}` };
  })
  .addNode("publish", (s) => ({ log: `publish:${JSON.stringify(s.decision)}` }))
  .addEdge(START, "draft")
  .addEdge("draft", "review")
  .addEdge("review", "publish")
  .addEdge("publish", END)
  .compile();

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(new Error("aborted"));
    });
  });

export const slow = new StateGraph(State)
  .addNode("one", async (s, config) => {
    await sleep(s.delayMs, config.signal);
    return { log: `one:${s.topic}` };
  })
  .addNode("two", async (s, config) => {
    await sleep(s.delayMs, config.signal);
    return { log: `two:${s.topic}` };
  })
  .addEdge(START, "one")
  .addEdge("one", "two")
  .addEdge("two", END)
  .compile();

export const chat = new StateGraph(MessagesAnnotation)
  .addNode("reply", async (s, config) => {
    const model = new FakeListChatModel({ responses: ["hello there"] });
    const reply: BaseMessage = await model.invoke(s.messages, config);
    return { messages: [new AIMessage({ id: "reply-1", content: reply.content })] };
  })
  .addEdge(START, "reply")
  .addEdge("reply", END)
  .compile();

export const custom = new StateGraph(State)
  .addNode("emit", (s, config: LangGraphRunnableConfig) => {
    config.writer?.({ kind: "progress", topic: s.topic });
    return { log: "emit" };
  })
  .addEdge(START, "emit")
  .addEdge("emit", END)
  .compile();
