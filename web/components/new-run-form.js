// "Start a refinement": creates a thread and a background run of the refine graph, then opens
// the thread page. The server's default model answers (offline: the simulated model).
import { api } from "../lib/api.js";
import { h, nextId } from "../lib/dom.js";
import { showError } from "./approval-panel.js";

export function newRunForm() {
  const id = nextId("new-run");
  const errors = h("div", { class: "error-box", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Start refinement");

  const onsubmit = async (e) => {
    e.preventDefault();
    const fd = new FormData(e.currentTarget);
    const task = String(fd.get("task") ?? "").trim();
    const expected = String(fd.get("expected") ?? "").trim();
    const configurable = {
      approval: { mode: String(fd.get("approval")) },
      maxIterations: Number(fd.get("maxIterations")),
    };
    // A numeric string is compared numerically by the verifier, anything else exactly.
    if (expected) configurable.verifiers = [{ kind: "answer_match", expected }];
    errors.hidden = true;
    submit.disabled = true;
    submit.textContent = "Starting…";
    try {
      const thread = await api("/threads", { method: "POST", body: { graph_id: "refine" } });
      await api(`/threads/${thread.thread_id}/runs`, {
        method: "POST",
        body: {
          assistant_id: "refine",
          input: { task },
          config: { configurable },
          stream_mode: ["values", "updates", "custom"],
        },
      });
      location.hash = `#/threads/${encodeURIComponent(thread.thread_id)}`;
    } catch (err) {
      showError(errors, err);
      submit.disabled = false;
      submit.textContent = "Start refinement";
    }
  };

  return h(
    "section",
    { class: "card", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, "Start a refinement"),
    h(
      "form",
      { class: "stack", onsubmit },
      h(
        "div",
        { class: "field" },
        h("label", { for: `${id}-task` }, "Task"),
        h("textarea", {
          id: `${id}-task`,
          name: "task",
          rows: 3,
          required: true,
          placeholder: "What is 17 * 23 + 4?",
        }),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: `${id}-expected` }, "Expected answer (optional)"),
        h("input", {
          id: `${id}-expected`,
          name: "expected",
          type: "text",
          inputmode: "decimal",
          "aria-describedby": `${id}-expected-help`,
        }),
        h(
          "p",
          { id: `${id}-expected-help`, class: "help" },
          "Adds an answer_match verifier: numbers match numerically.",
        ),
      ),
      h(
        "div",
        { class: "row gap" },
        h(
          "div",
          { class: "field grow" },
          h("label", { for: `${id}-approval` }, "Human approval"),
          h(
            "select",
            { id: `${id}-approval`, name: "approval" },
            h("option", { value: "final", selected: true }, "Final answer"),
            h("option", { value: "every_revision" }, "Every revision"),
            h("option", { value: "escalation" }, "On escalation"),
            h("option", { value: "never" }, "Never"),
          ),
        ),
        h(
          "div",
          { class: "field narrow" },
          h("label", { for: `${id}-max` }, "Max drafts"),
          h("input", {
            id: `${id}-max`,
            name: "maxIterations",
            type: "number",
            min: 1,
            max: 20,
            value: 3,
            required: true,
          }),
        ),
      ),
      submit,
      errors,
    ),
  );
}
