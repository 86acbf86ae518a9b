// Plain refine-state values as a finished run leaves them, for the learning-loop tests.
export function refinedValues(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    task: "A train travels 90 km in 45 minutes. What is its average speed in km/h?",
    context: "",
    drafts: [
      { iteration: 1, text: "90 / 45 = 2\nAnswer: 2", source: "generate" },
      { iteration: 2, text: "45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120", source: "revise" },
    ],
    critiques: [
      {
        iteration: 1,
        verdict: "revise",
        score: 0.2,
        issues: ["The time is in minutes; convert it to hours before dividing."],
      },
      { iteration: 2, verdict: "pass", score: 0.95, issues: [] },
    ],
    verdicts: [
      { iteration: 1, verifierId: "answer-line", hard: true, pass: true, score: 1, message: "" },
      {
        iteration: 1,
        verifierId: "units",
        hard: true,
        pass: false,
        score: 0,
        message: "the answer must be in km/h, not km per minute",
      },
      { iteration: 2, verifierId: "answer-line", hard: true, pass: true, score: 1, message: "" },
      { iteration: 2, verifierId: "units", hard: true, pass: true, score: 1, message: "" },
    ],
    approvals: [],
    feedback: [],
    answer: "45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120",
    stopReason: "accepted",
    strategy: "self-refine",
    usage: { promptTokens: 300, completionTokens: 100, totalTokens: 400, calls: 4 },
    simulated: true,
    ...overrides,
  };
}

export const META = {
  run_id: "00000000-0000-4000-8000-000000000001",
  thread_id: "00000000-0000-4000-8000-0000000000aa",
  assistant_id: "asst",
  graph_id: "refine",
};
