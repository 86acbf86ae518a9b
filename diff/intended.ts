// The reviewed list of intended differences between Refinery and the LangGraph server. The
// harness fails on every difference no entry here matches. An entry names the route (exact,
// or "*"), optionally the case, the difference path (a regular expression over
// `<step>.<status|headers|body|events|result|error|requests>…`) and why it is intended.
export interface Intended {
  route: string;
  case?: RegExp;
  path: RegExp;
  kind?: "missing" | "extra" | "value";
  reason: string;
}

export const INTENDED: Intended[] = [];
