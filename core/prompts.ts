// Default prompt templates for each node. Every template is overridable per graph, assistant or
// run (`prompts` in the refine config); placeholders are `{name}` and unknown ones are left as is.

export interface PromptTemplate {
  system: string;
  user: string;
}

export type PromptName =
  | "generate"
  | "critique"
  | "critiqueTargeted"
  | "localize"
  | "revise"
  | "reviseTargeted"
  | "pasr"
  | "judge";

export const DEFAULT_PROMPTS: Record<PromptName, PromptTemplate> = {
  generate: {
    system:
      "You are a careful expert. Answer the task completely and correctly. " +
      "When the task asks for a single value, end with a line `Answer: <value>`.",
    user: "Task:\n{task}\n{context_block}{feedback_block}",
  },
  critique: {
    system:
      "You review a draft answer to a task. Find concrete errors, omissions and violations of " +
      "the task's instructions. Do not rewrite the draft. Reply with JSON only: " +
      '{"verdict": "pass" | "revise", "score": <0..1 quality of the draft>, ' +
      '"issues": ["<specific problem and where it is>", ...]}. Use "pass" with no issues ' +
      "when nothing needs fixing.",
    user: "Task:\n{task}\n{context_block}{feedback_block}\nDraft:\n{draft}",
  },
  // Proactive's critique: asked only when a check left a doubt, after the deterministic
  // verifiers ran, so it asks about what they cannot see. Same user message as `critique`.
  critiqueTargeted: {
    system:
      "Check this draft for errors automatic checks cannot see: solve the task yourself and " +
      "compare. Name each wrong step, value or field with its correct value. Do not rewrite it. " +
      'JSON only: {"verdict": "pass" | "revise", "score": <0..1>, "issues": ["..."]}.',
    user: "Task:\n{task}\n{context_block}{feedback_block}\nDraft:\n{draft}",
  },
  // Proactive's follow-up to a critique that doubted the draft but named nothing.
  localize: {
    system:
      "The critique below doubted this draft but named nothing. Solve the task yourself and " +
      "compare. Name the wrong step, value or field with its correct value, or pass if none. " +
      'Do not rewrite it. JSON only: {"verdict": "pass" | "revise", "score": <0..1>, "issues": ["..."]}.',
    user: "Task:\n{task}\n{context_block}{feedback_block}\nCritique:\n{critique}\n\nDraft:\n{draft}",
  },
  revise: {
    system:
      "You revise a draft answer so that it fixes every listed problem while keeping what was " +
      "right. Reply with the complete revised answer only. When the task asks for a single " +
      "value, end with a line `Answer: <value>`.",
    user:
      "Task:\n{task}\n{context_block}{feedback_block}\nPrevious draft:\n{draft}\n\n" +
      "Critique:\n{critique}\n\nFailed checks:\n{failed_checks}",
  },
  reviseTargeted: {
    system:
      "Repair the draft: change only what the Critique and Failed checks name (a step, a field, " +
      "a sentence) and copy the rest unchanged. Reply with the whole repaired answer only; for a " +
      "single value, end with `Answer: <value>`.",
    user:
      "Task:\n{task}\n{context_block}{feedback_block}\nPrevious draft:\n{draft}\n\n" +
      "Critique:\n{critique}\n\nFailed checks:\n{failed_checks}",
  },
  pasr: {
    system: "{pasr_system}",
    user: "Task:\n{task}\n{context_block}{feedback_block}",
  },
  judge: {
    system:
      "You grade a draft answer against a rubric. Reply with JSON only: " +
      '{"score": <0..1>, "reason": "<one or two sentences>"}.',
    user: "Rubric:\n{rubric}\n\nTask:\n{task}\n\nDraft:\n{draft}",
  },
};

/** Fills `{name}` placeholders; unknown placeholders stay verbatim so user templates never throw. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (match, key: string) =>
    Object.prototype.hasOwnProperty.call(values, key) ? (values[key] ?? "") : match,
  );
}
