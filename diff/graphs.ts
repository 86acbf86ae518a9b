// Deterministic graphs served by both servers in the differential harness (npm run diff:langgraph):
// no model, no clock, no randomness, so both servers must answer the same corpus the same way.
// `echo` appends one entry per node, `approval` interrupts for a decision, `slow` waits
// `delayMs` in each of its steps (multitask strategies, cancel), `chat` streams a message from a
// fake chat model (messages stream modes) and `custom` writes custom stream events; `typed`,
// `zod_state`, `zod_v3` and `state_schema` declare their state each another way (schemas).
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import {
  Annotation,
  END,
  interrupt,
  type LangGraphRunnableConfig,
  MessagesAnnotation,
  ReducedValue,
  START,
  StateGraph,
  StateSchema,
} from "@langchain/langgraph";
import { registry } from "@langchain/langgraph/zod";
import { z } from "zod";
import { z as z3 } from "zod/v3";

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

// Graphs for GET /assistants/{id}/schemas, one per way to declare a state: an Annotation with
// input, output and context annotations (the reference reads the TypeScript types), zod with
// LangGraph's registry (jsonSchemaExtra) and a context schema, plain zod 3, and a StateSchema.
const TypedInput = Annotation.Root({ question: Annotation<string> });
const TypedOutput = Annotation.Root({ answer: Annotation<string>, sources: Annotation<string[]> });
const TypedState = Annotation.Root({
  /** What was asked. */
  question: Annotation<string>,
  answer: Annotation<string>,
  sources: Annotation<string[], string | string[]>({
    reducer: (l, r) => l.concat(r),
    default: () => [],
  }),
  mode: Annotation<"short" | "long" | null>,
});
const TypedContext = Annotation.Root({ model: Annotation<string> });

export const typed = new StateGraph(
  { input: TypedInput, output: TypedOutput, stateSchema: TypedState },
  TypedContext,
)
  .addNode("respond", (s) => ({ answer: `re:${s.question}`, sources: "none" }))
  .addEdge(START, "respond")
  .addEdge("respond", END)
  .compile();

export const zod_state = new StateGraph(
  z.object({
    items: z
      .array(z.string())
      .default(() => [])
      .register(registry, {
        reducer: { schema: z.string(), fn: (a: string[], b: string) => [...a, b] },
        jsonSchemaExtra: { langgraph_type: "messages" },
      }),
    status: z.enum(["idle", "done"]).default("idle"),
    question: z.string().describe("What to answer"),
  }),
  { context: z.object({ model: z.string().describe("Model name") }) },
)
  .addNode("work", (s) => ({ items: s.question, status: "done" as const }))
  .addEdge(START, "work")
  .addEdge("work", END)
  .compile();

export const zod_v3 = new StateGraph(
  z3.object({
    city: z3.string(),
    days: z3.number().int().min(1),
    units: z3.enum(["metric", "imperial"]).optional(),
  }),
)
  .addNode("plan", (s) => ({ days: s.days }))
  .addEdge(START, "plan")
  .addEdge("plan", END)
  .compile();

export const state_schema = new StateGraph(
  new StateSchema({
    log: new ReducedValue(
      z.array(z.string()).default(() => []),
      {
        inputSchema: z.union([z.string(), z.array(z.string())]),
        reducer: (current: string[], next: string | string[]) => current.concat(next),
        jsonSchemaExtra: { description: "Everything logged" },
      },
    ),
    topic: z.string(),
  }),
)
  .addNode("step", (s) => ({ log: `topic:${s.topic}` }))
  .addEdge(START, "step")
  .addEdge("step", END)
  .compile();
