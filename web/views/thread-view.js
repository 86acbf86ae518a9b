// One thread: header (status, outcome, tokens), the reviewer's approval panel when it waits on
// one, the final answer, the graph with where the thread is, and the iteration timeline. While a
// run is in flight the page follows its SSE stream and redraws as each step lands.
import { api, followRun } from "../lib/api.js";
import { announce, h, mount } from "../lib/dom.js";
import { ago, dateTime, duration, headline, score, shortId, tokens } from "../lib/format.js";
import { approvalBadge, simulatedBadge, statusBadge, stopBadge } from "../components/badges.js";
import { approvalPanel, showError } from "../components/approval-panel.js";
import { edgeLabelsFor, graphLegend, graphSvg, refineCounts } from "../components/graph-svg.js";
import { timeline } from "../components/timeline.js";
import { progressChart } from "../components/progress-chart.js";
import { answerChecks } from "../lib/checks.js";
import { checksNote } from "../components/badges.js";

const DEFAULTS = { strategy: "self-refine", maxIterations: 3, scoreThreshold: 0.8, critique: true };

/** A verifier spec in a few words: its kind, id and what it checks. */
function verifierText(v) {
  const what = [];
  if (v.expected !== undefined) what.push(`expected ${JSON.stringify(v.expected)}`);
  if (v.mustMatch?.length) what.push(`must match ${v.mustMatch.join(", ")}`);
  if (v.mustNotMatch?.length) what.push(`must not match ${v.mustNotMatch.join(", ")}`);
  if (v.maxLength !== undefined) what.push(`at most ${v.maxLength} ${v.unit ?? "chars"}`);
  if (v.minLength !== undefined) what.push(`at least ${v.minLength} ${v.unit ?? "chars"}`);
  if (v.rubric) what.push(headline(v.rubric, 60));
  if (v.url) what.push(String(v.url));
  const hard = v.hard ?? v.kind !== "llm_judge";
  return `${v.id ? `${v.id} (${v.kind})` : v.kind}${what.length ? `: ${what.join("; ")}` : ""}${hard ? "" : " · soft"}`;
}

/** The options the run went with: graph defaults < the thread's input options < the run's configurable. */
function effectiveOptions(values, run) {
  const configurable = run?.kwargs?.config?.configurable ?? {};
  const merged = { ...DEFAULTS, ...(values?.options ?? {}) };
  for (const [k, v] of Object.entries(configurable)) if (v !== undefined) merged[k] = v;
  const given = new Set([...Object.keys(values?.options ?? {}), ...Object.keys(configurable)]);
  return { merged, given };
}

function pendingApproval(thread) {
  for (const list of Object.values(thread?.interrupts ?? {}))
    for (const i of list ?? []) if (i?.value?.type === "approval") return i;
  return null;
}

function describeCustom(e) {
  switch (e?.type) {
    case "draft":
      return `draft ${e.iteration} ${e.node === "generate" ? "generated" : "revised"} (${tokens(e.usage?.totalTokens)} tokens, ${duration(e.latencyMs)})`;
    case "critique":
      return `critique of draft ${e.iteration}: ${e.verdict}${typeof e.score === "number" ? `, score ${score(e.score)}` : ""}`;
    case "verdicts": {
      const hard = (e.verdicts ?? []).filter((v) => v.hard);
      return `verifiers on draft ${e.iteration}: ${hard.filter((v) => v.pass).length}/${hard.length} hard checks pass`;
    }
    default:
      return null;
  }
}

export function threadView(main, { params, signal }) {
  const threadId = params.id;
  const path = `/threads/${encodeURIComponent(threadId)}`;
  let thread = null;
  let next = [];
  let runs = [];
  let graph = null;
  let graphLabels = {};
  /** The run being followed: {runId, controller, node, activity}. */
  let live = null;
  let approvalKey = null;
  let frame = 0;
  let pollTimer = 0;

  const head = h(
    "header",
    { class: "thread-head" },
    h("p", { class: "muted loading" }, "Loading the thread…"),
  );
  const notice = h("div", { class: "error-box", role: "alert", hidden: true });
  const approvalSlot = h("div", {});
  const answerSlot = h("div", {});
  const graphSlot = h("div", { class: "graph-wrap" });
  const livePill = h(
    "span",
    { class: "live-pill", hidden: true },
    h("span", { class: "pulse", "aria-hidden": "true" }),
    "live",
  );
  const timelineSlot = h("div", {});
  const usageSlot = h("div", {});
  const chartSlot = h("div", {});
  const optionsSlot = h("div", {});
  const feedbackSlot = h("div", {});
  const runsSlot = h("div", {});

  const feedbackStatus = h("p", { class: "help", role: "status" });
  const feedbackErrors = h("div", { class: "error-box", role: "alert", hidden: true });
  const feedbackForm = h(
    "form",
    {
      class: "stack",
      onsubmit: async (e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const text = String(new FormData(form).get("text") ?? "");
        feedbackErrors.hidden = true;
        try {
          await api(`${path}/feedback`, { method: "POST", body: { text } });
          form.reset();
          feedbackStatus.textContent =
            "Sent. The next critique and revision will take it into account.";
        } catch (err) {
          showError(feedbackErrors, err);
        }
      },
    },
    h(
      "div",
      { class: "field" },
      h("label", { for: "live-feedback" }, "Live feedback"),
      h("textarea", {
        id: "live-feedback",
        name: "text",
        rows: 3,
        required: true,
        "aria-describedby": "live-feedback-help",
      }),
      h(
        "p",
        { id: "live-feedback-help", class: "help" },
        "Steers the next critique and revision of this thread, while it runs or waits.",
      ),
    ),
    h("button", { type: "submit", class: "btn" }, "Send feedback"),
    feedbackStatus,
    feedbackErrors,
  );

  mount(
    main,
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/" }, "Threads"),
      h("span", { "aria-hidden": "true" }, " / "),
      h("span", { class: "mono" }, shortId(threadId)),
    ),
    head,
    notice,
    approvalSlot,
    answerSlot,
    h(
      "section",
      { class: "card", "aria-labelledby": "graph-title" },
      h(
        "div",
        { class: "row between gap wrap" },
        h("h2", { id: "graph-title" }, "Graph"),
        graphLegend({ current: true }),
      ),
      graphSlot,
    ),
    h(
      "div",
      { class: "layout" },
      h(
        "div",
        { class: "main-col" },
        h(
          "section",
          { class: "timeline-section", "aria-labelledby": "timeline-title" },
          h(
            "div",
            { class: "row gap section-head" },
            h("h2", { id: "timeline-title" }, "Iterations"),
            livePill,
          ),
          timelineSlot,
        ),
      ),
      h(
        "aside",
        { class: "side-col" },
        h(
          "section",
          { class: "card", "aria-labelledby": "chart-title" },
          h("h2", { id: "chart-title" }, "Score and tokens"),
          chartSlot,
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "usage-title" },
          h("h2", { id: "usage-title" }, "Tokens"),
          usageSlot,
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "options-title" },
          h("h2", { id: "options-title" }, "Run options"),
          optionsSlot,
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "feedback-title" },
          h("h2", { id: "feedback-title" }, "Feedback"),
          feedbackSlot,
          feedbackForm,
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "runs-title" },
          h("h2", { id: "runs-title" }, "Runs"),
          runsSlot,
        ),
      ),
    ),
  );

  const status = () => (live ? "busy" : (thread?.status ?? "idle"));

  function renderHead() {
    const v = thread.values ?? {};
    const task = typeof v.task === "string" && v.task ? v.task : `Thread ${shortId(threadId)}`;
    const u = v.usage;
    document.title = `${headline(task, 60)} · Refinery`;
    mount(
      head,
      h("h1", { class: "task" }, headline(task, 200)),
      task.length > 200 || task.includes("\n")
        ? h(
            "details",
            { class: "full-task" },
            h("summary", {}, "Full task"),
            h("pre", { class: "draft-text" }, task),
          )
        : null,
      h(
        "div",
        { class: "row gap wrap badges" },
        statusBadge(status()),
        !live && pendingApproval(thread) ? approvalBadge() : null,
        stopBadge(v.stopReason, live ? null : answerChecks(v)),
        simulatedBadge(v.simulated),
        v.strategy
          ? h("span", { class: "badge neutral", title: "Refinement strategy" }, v.strategy)
          : null,
      ),
      status() === "busy" ? cancelButton() : null,
      h(
        "dl",
        { class: "stats" },
        h("div", {}, h("dt", {}, "Drafts"), h("dd", {}, String((v.drafts ?? []).length))),
        h("div", {}, h("dt", {}, "Tokens"), h("dd", {}, u ? tokens(u.totalTokens) : "–")),
        h("div", {}, h("dt", {}, "Model calls"), h("dd", {}, u ? String(u.calls) : "–")),
        h("div", {}, h("dt", {}, "Best score"), h("dd", {}, v.best ? score(v.best.score) : "–")),
        h(
          "div",
          {},
          h("dt", {}, "Updated"),
          h("dd", { title: dateTime(thread.updated_at) }, ago(thread.updated_at)),
        ),
        h(
          "div",
          {},
          h("dt", {}, "Thread"),
          h("dd", { class: "mono", title: threadId }, shortId(threadId)),
        ),
      ),
    );
  }

  function activeRunId() {
    return (
      live?.runId ??
      runs.find((r) => r.status === "running")?.run_id ??
      [...runs].reverse().find((r) => r.status === "pending")?.run_id ??
      null
    );
  }

  function cancelButton() {
    const runId = activeRunId();
    if (!runId) return null;
    return h(
      "div",
      { class: "row gap wrap cancel-row" },
      h(
        "button",
        {
          type: "button",
          class: "btn danger-outline small",
          onclick: async (e) => {
            const b = e.currentTarget;
            b.disabled = true;
            b.textContent = "Cancelling…";
            try {
              await api(`${path}/runs/${encodeURIComponent(runId)}/cancel?wait=true`, {
                method: "POST",
              });
              announce("Run cancelled.");
              live?.controller.abort();
              live = null;
              load();
            } catch (err) {
              showError(notice, err);
              b.disabled = false;
              b.textContent = "Cancel run";
            }
          },
        },
        "Cancel run",
      ),
      h("span", { class: "muted small" }, "Stops the run; drafts so far are kept."),
    );
  }

  function renderApproval() {
    const pending = live ? null : pendingApproval(thread);
    const key = pending ? (pending.id ?? JSON.stringify(pending.value).length) : null;
    if (key === approvalKey) return;
    approvalKey = key;
    if (!pending) {
      mount(approvalSlot);
      return;
    }
    mount(
      approvalSlot,
      approvalPanel({
        threadId,
        request: pending.value,
        since: thread.updated_at,
        onDecided: (run, action) => {
          approvalKey = null;
          mount(approvalSlot);
          window.dispatchEvent(new Event("refinery:changed"));
          thread.interrupts = {};
          thread.status = "busy";
          announce(
            action === "approve"
              ? "Approved. Finishing the run."
              : "Decision sent. The run continues.",
          );
          follow(run.run_id);
          document
            .getElementById("timeline-title")
            ?.scrollIntoView({ behavior: "smooth", block: "start" });
        },
        onStale: () => {
          approvalKey = undefined; // redraw whatever the reload finds
          load();
        },
      }),
    );
  }

  function renderAnswer() {
    const v = thread.values ?? {};
    const err = v.error ?? thread.error;
    const parts = [];
    const checks = answerChecks(v);
    if (err)
      parts.push(
        h(
          "section",
          { class: "card error-card", role: "alert" },
          h("h2", {}, "The run failed"),
          h("p", {}, typeof err === "string" ? err : (err.message ?? JSON.stringify(err))),
          err.node
            ? h("p", { class: "muted small" }, `in ${err.node}, iteration ${err.iteration}`)
            : null,
        ),
      );
    if (typeof v.answer === "string" && v.stopReason && !live)
      parts.push(
        h(
          "section",
          {
            class: ["card", "answer-card", checks?.failed.length && "failing"],
            "aria-labelledby": "answer-title",
          },
          h(
            "div",
            { class: "row between gap wrap" },
            h("h2", { id: "answer-title" }, "Final answer"),
            h(
              "div",
              { class: "row gap" },
              stopBadge(v.stopReason, checks),
              checks ? h("span", { class: "muted small" }, `from draft ${checks.iteration}`) : null,
            ),
          ),
          checksNote(checks),
          h("pre", { class: "draft-text answer", tabindex: 0 }, v.answer),
        ),
      );
    mount(answerSlot, parts);
  }

  function renderGraph() {
    if (!graph) {
      mount(graphSlot, h("p", { class: "muted small" }, "No graph to draw."));
      return;
    }
    const current = live ? (live.node ? [live.node] : []) : next;
    mount(
      graphSlot,
      graphSvg(graph, {
        current,
        counts: refineCounts(thread.values),
        labels: graphLabels,
        title: "The thread's graph; highlighted: where it is now",
      }),
    );
  }

  function renderTimeline() {
    livePill.hidden = !live;
    const v = thread.values ?? {};
    if (!Array.isArray(v.drafts) && Object.keys(v).length) {
      mount(
        timelineSlot,
        h(
          "div",
          { class: "card" },
          h("p", { class: "muted" }, "This graph has no refinement timeline. Its state:"),
          h("pre", { class: "draft-text" }, JSON.stringify(v, null, 2)),
        ),
      );
      return;
    }
    mount(timelineSlot, timeline(v, { activity: live?.activity }));
  }

  function renderOptions() {
    const v = thread.values ?? {};
    if (!Array.isArray(v.drafts)) {
      mount(optionsSlot, h("p", { class: "muted small" }, "Not a refine thread."));
      return;
    }
    const { merged: o, given } = effectiveOptions(v, runs[0]);
    const row = (key, label, value) =>
      h(
        "div",
        { "data-option": key },
        h("dt", {}, label),
        h(
          "dd",
          {},
          value,
          given.has(key) ? null : h("span", { class: "muted tiny" }, " (default)"),
        ),
      );
    const approval = o.approval
      ? `${o.approval.mode}${o.approval.deadlineSeconds ? `, ${o.approval.deadlineSeconds} s then ${o.approval.onExpiry ?? "wait"}` : ""}`
      : "none";
    const models = Object.entries(o.models ?? {})
      .map(([role, m]) => `${role}: ${m.model ?? m.provider ?? "default"}`)
      .join(", ");
    mount(
      optionsSlot,
      h(
        "dl",
        { class: "options-list" },
        row(
          "strategy",
          "Strategy",
          v.strategy && v.strategy !== o.strategy
            ? `${v.strategy} (asked: ${o.strategy})`
            : o.strategy,
        ),
        row("maxIterations", "Max iterations", String(o.maxIterations)),
        row("tokenBudget", "Token budget", o.tokenBudget ? tokens(o.tokenBudget) : "none"),
        row("scoreThreshold", "Score threshold", String(o.scoreThreshold)),
        row("critique", "Critique", o.critique === false ? "off" : "on"),
        row("approval", "Approval", approval),
        models ? row("models", "Models", models) : null,
        h(
          "div",
          { "data-option": "verifiers" },
          h("dt", {}, "Verifiers"),
          h(
            "dd",
            {},
            o.verifiers?.length
              ? h(
                  "ul",
                  { class: "plain-list" },
                  o.verifiers.map((x) => h("li", {}, verifierText(x))),
                )
              : "none",
          ),
        ),
      ),
    );
  }

  function renderAside() {
    const v = thread.values ?? {};
    mount(
      chartSlot,
      Array.isArray(v.drafts)
        ? progressChart(v)
        : h("p", { class: "muted small" }, "Not a refine thread."),
    );
    renderOptions();
    const byNode = Object.entries(v.usage?.byNode ?? {}).filter(
      ([, u]) => u.calls > 0 || u.totalTokens > 0,
    );
    mount(
      usageSlot,
      byNode.length
        ? h(
            "table",
            { class: "mini-table" },
            h("caption", { class: "visually-hidden" }, "Tokens by node"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Node"),
                h("th", { scope: "col", class: "num" }, "Calls"),
                h("th", { scope: "col", class: "num" }, "Tokens"),
              ),
            ),
            h(
              "tbody",
              {},
              byNode.map(([node, u]) =>
                h(
                  "tr",
                  {},
                  h("th", { scope: "row" }, node),
                  h("td", { class: "num" }, String(u.calls)),
                  h("td", { class: "num" }, tokens(u.totalTokens)),
                ),
              ),
            ),
            v.usage
              ? h(
                  "tfoot",
                  {},
                  h(
                    "tr",
                    {},
                    h("th", { scope: "row" }, "Total"),
                    h("td", { class: "num" }, String(v.usage.calls)),
                    h("td", { class: "num" }, tokens(v.usage.totalTokens)),
                  ),
                )
              : null,
          )
        : h("p", { class: "muted small" }, "No model calls yet."),
    );
    const feedback = v.feedback ?? [];
    mount(
      feedbackSlot,
      feedback.length
        ? h(
            "ul",
            { class: "feedback-list" },
            feedback.map((f) =>
              h(
                "li",
                {},
                h("q", {}, f.text),
                h("span", { class: "muted tiny" }, `${f.source} · ${dateTime(f.at)}`),
              ),
            ),
          )
        : null,
    );
    mount(
      runsSlot,
      runs.length
        ? h(
            "ul",
            { class: "runs-list" },
            runs
              .slice(0, 8)
              .map((r) =>
                h(
                  "li",
                  {},
                  h("span", { class: "mono" }, shortId(r.run_id)),
                  h(
                    "span",
                    { class: ["run-status", `run-${r.status}`] },
                    r.run_id === live?.runId ? "running" : r.status,
                  ),
                  h(
                    "time",
                    { class: "muted tiny", datetime: r.created_at, title: dateTime(r.created_at) },
                    ago(r.created_at),
                  ),
                ),
              ),
          )
        : h("p", { class: "muted small" }, "No runs yet."),
    );
  }

  function renderAll() {
    if (!thread) return;
    renderHead();
    renderApproval();
    renderAnswer();
    renderGraph();
    renderTimeline();
    renderAside();
  }

  /** Coalesces the redraws of a burst of stream events into one frame. */
  function renderSoon() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      renderAll();
    });
  }

  function follow(runId) {
    if (live?.runId === runId || signal.aborted) return;
    live?.controller.abort();
    const controller = new AbortController();
    signal.addEventListener("abort", () => controller.abort(), { once: true });
    const mine = { runId, controller, node: null, activity: "Waiting for the run to start…" };
    live = mine;
    if (!runs.some((r) => r.run_id === runId))
      runs = [{ run_id: runId, status: "running", created_at: new Date().toISOString() }, ...runs];
    renderAll();
    const onEvent = (event, data) => {
      if (event === "values" && data && Array.isArray(data.drafts)) {
        thread.values = data;
      } else if (event === "updates" && data) {
        if (data.__interrupt__) mine.activity = "Pausing for a reviewer…";
        else {
          const node = Object.keys(data)[0];
          if (node) {
            mine.node = node;
            // Nodes that emit no custom event (approve) are still reported.
            if (mine.activityNode !== node) mine.activity = `Running · last step: ${node} finished`;
            mine.activityNode = null;
          }
        }
      } else if (event === "custom") {
        const text = describeCustom(data);
        if (text) {
          mine.activity = `Running · last step: ${text}`;
          mine.activityNode = data?.node;
        }
      } else if (event === "error") {
        showError(notice, { message: data?.message ?? "The run failed" });
      }
      renderSoon();
    };
    followRun(threadId, runId, onEvent, controller.signal)
      .catch((err) => showError(notice, err))
      .finally(() => {
        // A run can end right after its last event (a revision that repeats the draft stops the
        // run at once): draw that event now, as the live view it belongs to. Left to the pending
        // frame, it would be drawn after live mode ends, on a page still saying "busy".
        if (frame && live === mine) {
          cancelAnimationFrame(frame);
          frame = 0;
          renderAll();
        }
        if (live === mine) live = null;
        if (!signal.aborted) load();
      });
  }

  async function load() {
    clearTimeout(pollTimer);
    try {
      const [t, state, rs] = await Promise.all([
        api(path, { signal }),
        api(`${path}/state`, { signal }),
        api(`${path}/runs?limit=20`, { signal }),
      ]);
      // The navigation's approval count follows what this page sees.
      if (thread && (thread.status !== t.status || thread.updated_at !== t.updated_at))
        window.dispatchEvent(new Event("refinery:changed"));
      thread = t;
      next = state?.next ?? [];
      runs = rs ?? [];
      if (!graph) {
        const graphId = thread.metadata?.graph_id ?? thread.metadata?.assistant_id;
        if (graphId) {
          graph = await api(`/assistants/${encodeURIComponent(graphId)}/graph`, { signal }).catch(
            () => null,
          );
          graphLabels = await edgeLabelsFor(thread.metadata?.graph_id ?? graphId, null, signal);
        }
      }
      notice.hidden = true;
      renderAll();
      if (thread.status === "busy" && !live) {
        const active =
          runs.find((r) => r.status === "running") ??
          [...runs].reverse().find((r) => r.status === "pending");
        if (active) follow(active.run_id);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err?.status === 404) {
        mount(
          main,
          h(
            "div",
            { class: "card empty" },
            h("h1", {}, "Thread not found"),
            h("p", { class: "muted" }, `No thread ${threadId}: it may have been deleted.`),
            h("a", { href: "#/", class: "btn" }, "Back to threads"),
          ),
        );
        return;
      }
      showError(notice, err);
    }
    // Without a stream to follow, check now and then whether someone else moved the thread on.
    if (!live && !signal.aborted)
      pollTimer = setTimeout(poll, thread?.status === "busy" ? 1000 : 3000);
  }

  async function poll() {
    if (signal.aborted || live) return;
    try {
      const t = await api(path, { signal });
      if (t.updated_at !== thread?.updated_at || t.status !== thread?.status) return load();
    } catch {
      // The next load reports it.
    }
    if (!live && !signal.aborted)
      pollTimer = setTimeout(poll, thread?.status === "busy" ? 1000 : 3000);
  }

  load();
  return () => {
    clearTimeout(pollTimer);
    cancelAnimationFrame(frame);
  };
}
