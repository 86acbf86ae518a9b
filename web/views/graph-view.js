// Every registered graph drawn from its structure (GET /assistants/{id}/graph).
import { api, describeError } from "../lib/api.js";
import { h, mount } from "../lib/dom.js";
import { edgeLabelsFor, graphLegend, graphSvg } from "../components/graph-svg.js";

export function graphView(main, { signal }) {
  document.title = "Graphs · Refinery";
  const body = h("div", { class: "stack" }, h("p", { class: "muted loading" }, "Loading graphs…"));
  mount(
    main,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Graphs"),
        h(
          "p",
          { class: "lede" },
          "The graphs this server runs, drawn from their nodes and edges (GET /assistants/{id}/graph).",
        ),
      ),
    ),
    body,
  );
  (async () => {
    try {
      const info = await api("/info", { signal });
      const specs = await api("/graphs", { signal }).catch(() => []);
      const graphs = await Promise.all(
        info.graphs.map(async (id) => ({
          id,
          graph: await api(`/assistants/${encodeURIComponent(id)}/graph`, { signal }),
          labels: await edgeLabelsFor(id, specs, signal),
        })),
      );
      mount(
        body,
        graphs.map(({ id, graph, labels }) =>
          h(
            "section",
            { class: "card", "aria-labelledby": `graph-${id}` },
            h(
              "h2",
              { id: `graph-${id}` },
              id,
              id === "refine"
                ? h("span", { class: "muted small" }, " · the built-in refinement loop")
                : null,
            ),
            h(
              "div",
              { class: "graph-wrap" },
              graphSvg(graph, { title: `The ${id} graph`, labels }),
            ),
            graphLegend(),
          ),
        ),
      );
    } catch (err) {
      if (signal.aborted) return;
      const d = describeError(err);
      mount(body, h("div", { class: "error-box", role: "alert" }, h("strong", {}, d.title)));
    }
  })();
  return () => {};
}
