// A cheap, deterministic "is this draft doubtful?" check used by the proactive strategy to
// decide whether an LLM critique is worth its tokens. (Initial version; a fuller one with
// arithmetic step checking replaces it.)
export interface SelfCheckResult {
  doubtful: boolean;
  reasons: string[];
}

const HEDGES = /\b(i think|not sure|i'm unsure|i am unsure|probably|might be|i guess)\b/i;
const ASKS_VALUE = /\b(what is|how many|how much|compute|calculate|find the)\b/i;
const ANSWER_MARK = /(^|\n)\s*(final answer|answer)\s*[:：]|\\boxed\{|####|<answer>/i;

export function selfCheck(draft: string, task: string): SelfCheckResult {
  const reasons: string[] = [];
  if (draft.trim() === "") reasons.push("the draft is empty");
  if (HEDGES.test(draft)) reasons.push("the draft hedges");
  if (ASKS_VALUE.test(task) && !ANSWER_MARK.test(draft))
    reasons.push("the task asks for a value but the draft has no final answer line");
  return { doubtful: reasons.length > 0, reasons };
}
