// A graph with subgraphs for the differential harness (issue 17): `nested` runs outline → review
// → publish, where `review` is a compiled subgraph (prep → approve) and `approve` is one too
// (ask, which calls interrupt()). The state is zod (each field keeps its last value, so a
// subgraph handing its whole state back adds nothing twice), so both servers take the
// subgraphs' schemas from it at run time; in a file of its own so the other graphs' schema
// extraction does not load zod.
import { END, interrupt, START, StateGraph } from "@langchain/langgraph";
import { z } from "zod";

const SubState = z.object({
  topic: z.string().default(""),
  log: z.array(z.string()).default([]),
  decision: z.unknown().default(null),
});
const subStep = (s: z.infer<typeof SubState>, entry: string) => ({ log: [...s.log, entry] });
const subApprove = new StateGraph(SubState)
  .addNode("ask", (s) => {
    const decision = interrupt({ question: "publish?", topic: s.topic });
    return { decision, ...subStep(s, `ask:${JSON.stringify(decision)}`) };
  })
  .addEdge(START, "ask")
  .addEdge("ask", END)
  .compile();
const subReview = new StateGraph(SubState)
  .addNode("prep", (s) => subStep(s, `prep:${s.topic}`))
  .addNode("approve", subApprove)
  .addEdge(START, "prep")
  .addEdge("prep", "approve")
  .addEdge("approve", END)
  .compile();
export const nested = new StateGraph(SubState)
  .addNode("outline", (s) => subStep(s, `outline:${s.topic}`))
  .addNode("review", subReview)
  .addNode("publish", (s) => subStep(s, `publish:${JSON.stringify(s.decision)}`))
  .addEdge(START, "outline")
  .addEdge("outline", "review")
  .addEdge("review", "publish")
  .addEdge("publish", END)
  .compile();
