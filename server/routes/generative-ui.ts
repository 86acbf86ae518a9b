// Generative UI, as the LangGraph server serves it: `POST /ui/{graph_id}` answers the HTML that
// the SDK's `LoadExternalComponent` puts into its shadow root (a <link> per stylesheet and a
// <script> whose onload renders the named component), `GET /ui/{graph_id}/{file}` the bundled
// files (public, like the LangGraph server's: a <script> or <link> sends no credentials).
import { Router, type Request } from "express";
import { RefineryError } from "../../core/errors.ts";
import { authOf } from "../auth/request.ts";
import { parseBody, sendJson } from "../http.ts";
import { UiComponentRequest } from "../schemas.ts";
import { uiFileType, type UiBundle, type UiBundles } from "../ui-bundle.ts";

/** Escapes text for a double-quoted HTML attribute value. */
function attr(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll('"', "&quot;");
}

/**
 * Escapes text for a single-quoted attribute value (onload='...'): the component name comes from
 * the caller, and a quote in it must not end the attribute.
 */
function singleQuotedAttr(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("'", "&#39;");
}

function uiNotFound(graphId: string, bundles: UiBundles | undefined): RefineryError {
  const names = bundles?.names() ?? [];
  return new RefineryError("not_found", `UI not found for graph "${graphId}"`, {
    field: "graph_id",
    fix: names.length
      ? `langgraph.json "ui" has: ${names.join(", ")}`
      : 'declare the graph\'s UI module in langgraph.json: "ui": {"<graph>": "./src/ui.tsx"}',
  });
}

/** Where the browser fetches the files: plain http on loopback, else the page's own scheme. */
function origin(req: Request): string {
  const host = req.headers.host ?? "";
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0];
  const local = name === "localhost" || name === "127.0.0.1";
  return `${local ? "http:" : ""}//${host}`;
}

function componentHtml(req: Request, bundle: UiBundle, name: string): string {
  const base = `${origin(req)}/ui/${encodeURIComponent(bundle.name)}`;
  const lines: string[] = [];
  for (const css of bundle.files.filter((f) => f.basename.endsWith(".css")))
    lines.push(`<link rel="stylesheet" href="${attr(`${base}/${css.basename}`)}" />`);
  const js = bundle.files.find((f) => f.basename.endsWith(".js"));
  if (js) {
    // "{{shadowRootId}}" is replaced by the SDK with the id of the element it renders into.
    const onload = `${bundle.globalName}.render(${JSON.stringify(name)}, "{{shadowRootId}}")`;
    lines.push(
      `<script src="${attr(`${base}/${js.basename}`)}" onload='${singleQuotedAttr(onload)}'></script>`,
    );
  }
  return lines.join("\n");
}

export function generativeUiRoutes(bundles: UiBundles | undefined): Router {
  const r = Router();
  r.post("/ui/:graph_id", (req, res) => {
    authOf(req).check("read");
    const body = parseBody(UiComponentRequest, req.body);
    const graphId = req.params.graph_id!;
    const bundle = bundles?.find(graphId);
    if (!bundle) throw uiNotFound(graphId, bundles);
    // As plain text, as the reference sends it: the SDK reads the text and parses it itself, and
    // a browser never renders it as a page of this origin.
    res
      .status(200)
      .type("text/plain; charset=utf-8")
      .send(componentHtml(req, bundle, body.name));
  });
  r.get("/ui/:graph_id/:file", (req, res) => {
    const graphId = req.params.graph_id!;
    const bundle = bundles?.find(graphId);
    if (!bundle) throw uiNotFound(graphId, bundles);
    const file = bundle.files.find((f) => f.basename === req.params.file);
    if (!file) {
      sendJson(
        res,
        404,
        new RefineryError("not_found", `UI "${bundle.name}" has no file ${req.params.file}`, {
          field: "file",
          fix: "load the files POST /ui/{graph_id} names",
        }).toJSON(),
      );
      return;
    }
    res.setHeader("Content-Type", uiFileType(file.basename));
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Cache-Control", "no-cache");
    res.status(200).send(file.contents);
  });
  return r;
}
