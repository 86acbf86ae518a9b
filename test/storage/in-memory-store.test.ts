// LangGraph's own InMemoryStore through the store conformance suite: the reference whose
// semantics the SQLite and Postgres stores must share (the suite's expectations hold for all).
import { InMemoryStore } from "@langchain/langgraph-checkpoint";
import { describeStoreConformance } from "./store-conformance.ts";

describeStoreConformance("InMemoryStore (reference)", async () => ({
  store: new InMemoryStore(),
  cleanup: async () => {},
}));
