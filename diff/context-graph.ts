// A graph for the differential harness compiled with a runtime context schema (issue 17): its
// node reports the context it was given (the run's merged over the assistant's). In a file of
// its own so the other graphs' schema extraction does not load zod.
import {
  Annotation,
  END,
  type LangGraphRunnableConfig,
  START,
  StateGraph,
} from "@langchain/langgraph";
import { z } from "zod";

const State = Annotation.Root({
  log: Annotation<string[], string | string[]>({
    reducer: (l, r) => l.concat(r),
    default: () => [],
  }),
});

const Context = z.object({
  tone: z.enum(["formal", "casual"]),
  limit: z.number().int().positive().optional(),
});

export const ctx = new StateGraph(State, { context: Context })
  .addNode("speak", (_s, config: LangGraphRunnableConfig<z.infer<typeof Context>>) => ({
    log: `tone:${config.context?.tone} limit:${config.context?.limit ?? "none"}`,
  }))
  .addEdge(START, "speak")
  .addEdge("speak", END)
  .compile();
