// RemoteGraph (@langchain/langgraph/remote) against the real server: the official client-side
// graph that teams use to call a deployed graph, on its own or as a node of a local graph.
// Offline simulated model; the server listens on an ephemeral loopback port.
import {
  Annotation,
  Command,
  END,
  isGraphInterrupt,
  START,
  StateGraph,
} from "@langchain/langgraph";
import { RemoteGraph } from "@langchain/langgraph/remote";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => s?.close());

const OPTIONS = {
  verifiers: [{ kind: "answer_match", expected: 395 }],
  models: { default: { provider: "simulated", simulated: { seed: 7 } } },
};

interface RefineOut {
  answer: string;
  stopReason: string;
  simulated: boolean;
  drafts: unknown[];
}

describe("RemoteGraph", () => {
  it("invokes the refine graph, and its state and history are the thread's", async () => {
    const remote = new RemoteGraph({ graphId: "refine", client: s.client });
    const thread = await s.client.threads.create();
    const config = { configurable: { thread_id: thread.thread_id, ...OPTIONS } };
    const out = (await remote.invoke({ task: "What is 17 * 23 + 4?" }, config)) as RefineOut;
    expect(out.simulated).toBe(true);
    expect(out.answer).toBeTruthy();
    expect(["accepted", "max_iterations", "unchanged"]).toContain(out.stopReason);

    const state = await remote.getState(config);
    expect(state.values).toEqual(out);
    expect(state.next).toEqual([]);
    const history = [];
    for await (const snapshot of remote.getStateHistory(config, { limit: 100 })) {
      history.push(snapshot);
    }
    // Newest first: the first entry is the final state, the last the input checkpoint.
    expect(history[0]!.values).toEqual(out);
    expect(history.length).toBeGreaterThan(3);
    expect(history.at(-1)!.metadata?.source).toBe("input");
  });

  it("streams updates node by node, generate first", async () => {
    const remote = new RemoteGraph({ graphId: "refine", client: s.client });
    const nodes: string[] = [];
    for await (const chunk of await remote.stream(
      { task: "What is 6 * 7?" },
      { configurable: { ...OPTIONS, verifiers: [{ kind: "answer_match", expected: 42 }] } },
    )) {
      nodes.push(...Object.keys(chunk as Record<string, unknown>));
    }
    expect(nodes[0]).toBe("generate");
    expect(nodes).toContain("critique");
  });

  it("raises the interrupt of a langgraph.json graph and resumes with Command", async () => {
    const remote = new RemoteGraph({ graphId: "approval", client: s.client });
    const thread = await s.client.threads.create();
    const config = { configurable: { thread_id: thread.thread_id } };
    const error = await remote.invoke({ topic: "t" }, config).catch((e: unknown) => e);
    expect(isGraphInterrupt(error)).toBe(true);
    // RemoteGraph throws as soon as the interrupt chunk arrives, before the run has ended;
    // wait for the run as a caller would before resuming.
    const [run] = await s.client.runs.list(thread.thread_id);
    await s.client.runs.join(thread.thread_id, run!.run_id);
    expect((await s.client.threads.get(thread.thread_id)).status).toBe("interrupted");
    const out = (await remote.invoke(new Command({ resume: "yes" }), config)) as { log: string[] };
    expect(out.log).toEqual(["draft:t", "review:yes", "publish:yes"]);
  });

  it("runs as a node of a local graph, which gets the remote graph's output", async () => {
    const remote = new RemoteGraph({ graphId: "refine", client: s.client });
    const Parent = Annotation.Root({
      task: Annotation<string>,
      answer: Annotation<string>,
      stopReason: Annotation<string>,
      loud: Annotation<string>,
    });
    const parent = new StateGraph(Parent)
      .addNode("refine", remote)
      .addNode("shout", (state) => ({ loud: state.answer.toUpperCase() }))
      .addEdge(START, "refine")
      .addEdge("refine", "shout")
      .addEdge("shout", END)
      .compile();
    const out = await parent.invoke(
      { task: "What is 17 * 23 + 4?" },
      { configurable: { ...OPTIONS } },
    );
    expect(out.answer).toBeTruthy();
    expect(out.loud).toBe(out.answer.toUpperCase());
    expect(["accepted", "max_iterations", "unchanged"]).toContain(out.stopReason);
  });
});
