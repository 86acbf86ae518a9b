// The light run context (core/run-context.ts): graph calls keep every behaviour that reads the
// async-context store (getConfig, interrupt and resume, context variables, config inherited by
// nested runnables, traceable functions, callbacks), and the light path is the one taken.
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { RunnableLambda } from "@langchain/core/runnables";
import { getContextVariable, setContextVariable } from "@langchain/core/context";
import {
  Annotation,
  Command,
  END,
  getConfig,
  interrupt,
  MemorySaver,
  START,
  StateGraph,
} from "@langchain/langgraph";
import { getCurrentRunTree } from "langsmith/singletons/traceable";
import { traceable } from "langsmith/traceable";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { installLightRunContext, uninstallLightRunContext } from "../../core/run-context.ts";

const State = Annotation.Root({
  seen: Annotation<string[]>({ reducer: (a, b) => [...a, ...b], default: () => [] }),
  answer: Annotation<string>(),
});

/** Ids of the run trees the nodes saw in their async context, in node order. */
let storeIds: string[] = [];

function buildGraph() {
  // A nested runnable called without a config: it inherits the node's from async context.
  const nested = RunnableLambda.from(
    async (_: string, config) => `${String(config?.configurable?.user)}`,
  );
  // A traceable function called in a node (tracing is off) still runs.
  const traced = traceable(async () => "traced", { name: "inner" });
  return new StateGraph(State)
    .addNode("first", async () => {
      storeIds.push(getCurrentRunTree().id);
      setContextVariable("flavour", "vanilla");
      const user = await nested.invoke("x");
      return { seen: [`first:${getConfig().configurable?.user}:${user}`] };
    })
    .addNode("ask", async () => {
      storeIds.push(getCurrentRunTree().id);
      const inner = await traced();
      const answer = interrupt({ question: "which?" }) as string;
      return { seen: [`ask:${String(getContextVariable("flavour"))}:${inner}`], answer };
    })
    .addEdge(START, "first")
    .addEdge("first", "ask")
    .addEdge("ask", END)
    .compile({ checkpointer: new MemorySaver() });
}

describe("light run context", () => {
  beforeEach(() => {
    storeIds = [];
    expect(installLightRunContext()).toBe(true);
  });
  afterEach(() => uninstallLightRunContext());

  async function interruptAndResume(threadId: string) {
    const graph = buildGraph();
    const config = { configurable: { thread_id: threadId, user: "ada" } };
    const first = await graph.invoke({}, config);
    const done = await graph.invoke(new Command({ resume: "blue" }), config);
    return { first, done };
  }

  it("keeps getConfig, config inherited by nested runnables, traceable functions, interrupt and resume", async () => {
    const light = await interruptAndResume("t1");
    expect(light.first.seen).toEqual(["first:ada:ada"]);
    expect(
      (light.first as { __interrupt__?: { value: unknown }[] }).__interrupt__?.[0]?.value,
    ).toEqual({ question: "which?" });
    // The context variable set in `first` is not visible in `ask` (another task), as in the library.
    expect(light.done.seen).toEqual(["first:ada:ada", "ask:undefined:traced"]);
    expect(light.done.answer).toBe("blue");
    uninstallLightRunContext();
    const library = await interruptAndResume("t1b");
    expect(library.done).toEqual(light.done);
    expect(library.first.seen).toEqual(light.first.seen);
  });

  it("takes the light path: every call without callbacks shares one untraced run tree", async () => {
    await buildGraph().invoke({}, { configurable: { thread_id: "t2", user: "x" } });
    expect(storeIds).toHaveLength(2);
    expect(storeIds[0]).toBe(storeIds[1]);
    uninstallLightRunContext();
    storeIds = [];
    await buildGraph().invoke({}, { configurable: { thread_id: "t3", user: "x" } });
    // The library's own path builds a run tree per call.
    expect(storeIds).toHaveLength(2);
    expect(storeIds[0]).not.toBe(storeIds[1]);
  });

  it("a context variable set in a node reaches the runnables it calls, and the config stays", async () => {
    const read = RunnableLambda.from(async (_: null, config) => ({
      flavour: getContextVariable("flavour"),
      user: config?.configurable?.user,
    }));
    const graph = new StateGraph(State)
      .addNode("only", async () => {
        setContextVariable("flavour", "mint");
        const got = await read.invoke(null);
        return {
          seen: [`${String(got.flavour)}:${String(got.user)}:${getConfig().configurable?.user}`],
        };
      })
      .addEdge(START, "only")
      .addEdge("only", END)
      .compile();
    const out = await graph.invoke({}, { configurable: { user: "lin" } });
    expect(out.seen).toEqual(["mint:lin:lin"]);
  });

  it("callbacks passed by the caller still see every node (the library's path)", async () => {
    const started: string[] = [];
    class Recorder extends BaseCallbackHandler {
      name = "recorder";
      override handleChainStart(
        _chain: unknown,
        _inputs: unknown,
        _runId: string,
        _parent?: string,
        _tags?: string[],
        _meta?: unknown,
        _type?: string,
        runName?: string,
      ) {
        if (runName) started.push(runName);
      }
    }
    await buildGraph().invoke(
      {},
      { configurable: { thread_id: "t4", user: "x" }, callbacks: [new Recorder()] },
    );
    expect(started).toEqual(expect.arrayContaining(["first", "ask"]));
  });
});
