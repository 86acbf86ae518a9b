// The reviewer's panel for a thread waiting on an approval: what is being approved (draft, diff
// to the previous draft, critique, verdicts, tokens) and the four answers. Each answer is
// POST /threads/{id}/approval; the server's error message is shown in place when it refuses.
import { api, describeError } from "../lib/api.js";
import { announce, h, mount, nextId } from "../lib/dom.js";
import { parseUnified } from "../lib/diff.js";
import { ago, dateTime, tokens, until } from "../lib/format.js";
import { critiqueSummary, verdictList } from "./badges.js";
import { diffView } from "./diff-view.js";

function errorBox() {
  return h("div", { class: "error-box", role: "alert", hidden: true });
}

export function showError(box, err) {
  const d = describeError(err);
  if (!d) return;
  mount(
    box,
    h("strong", {}, d.title),
    d.fix ? h("p", { class: "fix" }, `How to fix: ${d.fix}`) : null,
  );
  box.hidden = false;
}

/**
 * @param {{threadId: string, request: object, since?: string, onDecided: (run: object, action: string) => void, onStale: () => void}} p
 */
export function approvalPanel({ threadId, request, since, onDecided, onStale }) {
  const errors = errorBox();
  const titleId = nextId("approval-title");
  const buttons = [];
  const forms = {};

  const send = async (decision, submitter) => {
    errors.hidden = true;
    for (const b of buttons) b.disabled = true;
    const label = submitter?.textContent;
    if (submitter) submitter.textContent = "Sending…";
    try {
      const run = await api(`/threads/${encodeURIComponent(threadId)}/approval`, {
        method: "POST",
        body: decision,
      });
      announce(`Decision sent: ${decision.action}.`);
      onDecided(run, decision.action);
    } catch (err) {
      showError(errors, err);
      if (err?.status === 409) {
        errors.append(
          h(
            "button",
            { type: "button", class: "btn small", onclick: onStale },
            "Reload the thread",
          ),
        );
      }
      for (const b of buttons) b.disabled = false;
      if (submitter) submitter.textContent = label;
    }
  };

  const toggle = (name, opener) => {
    for (const [key, form] of Object.entries(forms)) {
      const show = key === name ? form.hidden : false;
      form.hidden = !show;
      form.opener.setAttribute("aria-expanded", String(show));
      if (show) form.querySelector("textarea, input")?.focus();
    }
    opener?.setAttribute("aria-expanded", String(!forms[name].hidden));
  };

  const disclosure = (name, text, cls) => {
    const b = h(
      "button",
      {
        type: "button",
        class: ["btn", cls],
        "aria-expanded": "false",
        "aria-controls": `${titleId}-${name}`,
        onclick: () => toggle(name, b),
      },
      text,
    );
    buttons.push(b);
    return b;
  };

  const approve = h(
    "button",
    {
      type: "button",
      class: "btn primary",
      onclick: (e) => send({ action: "approve" }, e.currentTarget),
    },
    "Approve",
  );
  buttons.push(approve);
  const rejectBtn = disclosure("reject", "Reject with feedback…");
  const editBtn = disclosure("edit", "Edit the draft…");
  const abortBtn = disclosure("abort", "Abort…", "danger-outline");

  const form = (name, opener, fields, submitText, submitClass, toDecision) => {
    const submit = h("button", { type: "submit", class: ["btn", submitClass] }, submitText);
    buttons.push(submit);
    const f = h(
      "form",
      {
        id: `${titleId}-${name}`,
        class: "decision-form",
        hidden: true,
        onsubmit: (e) => {
          e.preventDefault();
          send(toDecision(new FormData(e.currentTarget)), submit);
        },
      },
      fields,
      h(
        "div",
        { class: "row gap" },
        submit,
        h(
          "button",
          { type: "button", class: "btn ghost", onclick: () => toggle(name, opener) },
          "Cancel",
        ),
      ),
    );
    f.opener = opener;
    forms[name] = f;
    return f;
  };

  const field = (name, label, control, help) => {
    const id = `${titleId}-${name}-field`;
    control.id = id;
    control.name = name;
    const helpId = help ? `${id}-help` : undefined;
    if (helpId) control.setAttribute("aria-describedby", helpId);
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      control,
      help ? h("p", { id: helpId, class: "help" }, help) : null,
    );
  };

  const rejectForm = form(
    "reject",
    rejectBtn,
    field(
      "feedback",
      "Feedback for the next revision",
      h("textarea", {
        rows: 3,
        required: true,
        maxlength: 10000,
        placeholder: "What should change?",
      }),
      "The critique and the next revision receive it; the loop continues and asks again.",
    ),
    "Send feedback and revise",
    "primary",
    (fd) => ({ action: "reject", feedback: String(fd.get("feedback") ?? "") }),
  );
  const editForm = form(
    "edit",
    editBtn,
    field(
      "text",
      "Replacement draft",
      h("textarea", { rows: 8, required: true, class: "mono" }, request.draft ?? ""),
      "Your text becomes the next draft; it is verified again before it can be approved.",
    ),
    "Use this draft",
    "primary",
    (fd) => ({ action: "edit", text: String(fd.get("text") ?? "") }),
  );
  const abortForm = form(
    "abort",
    abortBtn,
    field("reason", "Reason (optional)", h("input", { type: "text", maxlength: 10000 })),
    "Abort the run",
    "danger",
    (fd) => {
      const reason = String(fd.get("reason") ?? "").trim();
      return reason ? { action: "abort", reason } : { action: "abort" };
    },
  );

  const critique = request.critique;
  const rows = request.diff ? parseUnified(request.diff) : null;
  const meta = [
    h("span", {}, `iteration ${request.iteration}`),
    since ? h("span", { title: dateTime(since) }, `paused ${ago(since)}`) : null,
    h("span", {}, `${tokens(request.usage?.totalTokens)} tokens so far`),
    request.deadline
      ? h(
          "span",
          { class: "deadline", title: dateTime(request.deadline) },
          `deadline ${until(request.deadline)}${request.onExpiry && request.onExpiry !== "wait" ? ` (then ${request.onExpiry})` : ""}`,
        )
      : null,
  ];

  return h(
    "section",
    { class: "card approval-panel", id: "approval", "aria-labelledby": titleId },
    h(
      "header",
      { class: "approval-head" },
      h(
        "div",
        {},
        h("h2", { id: titleId }, "Awaiting your approval"),
        h("p", { class: "reason" }, request.reason),
      ),
      h("p", { class: "meta-line small" }, meta),
    ),
    request.warning
      ? h(
          "div",
          { class: "check-warning", role: "note", "data-checks": "fail" },
          h("strong", {}, "This answer fails a hard check. "),
          request.warning,
          request.earlierPassing
            ? h(
                "details",
                {},
                h("summary", {}, `Draft ${request.earlierPassing.iteration}, which passed`),
                h("pre", { class: "draft-text" }, request.earlierPassing.draft),
              )
            : null,
        )
      : null,
    h(
      "div",
      { class: ["approval-body", rows && "two-col"] },
      h(
        "section",
        { class: "draft" },
        h("h3", {}, `Draft ${request.iteration}`),
        h(
          "pre",
          { class: "draft-text", tabindex: 0, "aria-label": `Draft ${request.iteration}` },
          request.draft,
        ),
      ),
      rows
        ? h(
            "section",
            { class: "changes" },
            h("h3", {}, `Changes from draft ${request.iteration - 1}`),
            diffView(rows, { label: "Unified diff" }),
          )
        : null,
    ),
    h(
      "div",
      { class: "approval-checks" },
      h(
        "section",
        {},
        h("h3", {}, "Critique"),
        critique ? critiqueSummary(critique) : h("p", { class: "muted small" }, "Not critiqued."),
      ),
      h("section", {}, h("h3", {}, "Verifiers"), verdictList(request.verdicts)),
    ),
    h(
      "div",
      { class: "actions", role: "group", "aria-label": "Decision" },
      approve,
      rejectBtn,
      editBtn,
      abortBtn,
    ),
    rejectForm,
    editForm,
    abortForm,
    errors,
  );
}
