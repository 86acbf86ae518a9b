// /assistants: a graph plus a saved config, versioned. Every graph has a system assistant
// (uuid5 of its id); a graph id is accepted wherever an assistant id is.
import { randomUUID } from "node:crypto";
import { Router } from "express";
import { RefineryError } from "../../core/errors.ts";
import { findAssistant, type AppDeps } from "../context.ts";
import { parseBody, sendJson } from "../http.ts";
import {
  AssistantCount,
  AssistantCreate,
  AssistantPatch,
  AssistantSearch,
  AssistantSetLatest,
  AssistantVersionsSearch,
} from "../schemas.ts";

export function assistantRoutes(deps: AppDeps): Router {
  const r = Router();
  const { storage, registry } = deps;

  const checkGraph = (graphId: string, config: Record<string, unknown> | undefined) => {
    if (!registry.entry(graphId)) {
      throw new RefineryError("invalid_input", `graph "${graphId}" is not registered`, {
        field: "graph_id",
        fix: `use one of: ${registry.ids().join(", ")}`,
      });
    }
    deps.validateConfig?.(graphId, config);
  };

  r.post("/assistants", async (req, res) => {
    const body = parseBody(AssistantCreate, req.body);
    checkGraph(body.graph_id, body.config ?? undefined);
    const assistant = await storage.assistants.create(
      {
        assistant_id: body.assistant_id ?? randomUUID(),
        graph_id: body.graph_id,
        config: body.config ?? {},
        context: body.context ?? {},
        metadata: body.metadata ?? {},
        name: body.name ?? body.graph_id,
        description: body.description ?? null,
      },
      body.if_exists ?? "raise",
    );
    sendJson(res, 200, assistant);
  });

  r.post("/assistants/search", async (req, res) => {
    const q = parseBody(AssistantSearch, req.body);
    const rows = await storage.assistants.search({
      graph_id: q.graph_id ?? undefined,
      name: q.name ?? undefined,
      metadata: q.metadata ?? undefined,
      limit: q.limit ?? 10,
      offset: q.offset ?? 0,
      sort_by: q.sort_by ?? undefined,
      sort_order: q.sort_order ?? undefined,
    });
    sendJson(res, 200, q.select?.length ? rows.map((a) => pick(a, q.select ?? [])) : rows);
  });

  r.post("/assistants/count", async (req, res) => {
    const q = parseBody(AssistantCount, req.body);
    sendJson(
      res,
      200,
      await storage.assistants.count({
        graph_id: q.graph_id ?? undefined,
        name: q.name ?? undefined,
        metadata: q.metadata ?? undefined,
      }),
    );
  });

  r.get("/assistants/:assistant_id", async (req, res) => {
    sendJson(res, 200, await findAssistant(deps, req.params.assistant_id));
  });

  r.patch("/assistants/:assistant_id", async (req, res) => {
    const current = await findAssistant(deps, req.params.assistant_id);
    const patch = parseBody(AssistantPatch, req.body);
    const graphId = patch.graph_id ?? current.graph_id;
    checkGraph(graphId, patch.config ?? current.config);
    const updated = await storage.assistants.update(current.assistant_id, {
      graph_id: patch.graph_id ?? undefined,
      config: patch.config ?? undefined,
      context: patch.context ?? undefined,
      metadata: patch.metadata ?? undefined,
      name: patch.name ?? undefined,
      description: patch.description === undefined ? undefined : patch.description,
    });
    sendJson(res, 200, updated);
  });

  r.delete("/assistants/:assistant_id", async (req, res) => {
    const a = await findAssistant(deps, req.params.assistant_id);
    await storage.assistants.delete(a.assistant_id);
    res.status(204).end();
  });

  r.get("/assistants/:assistant_id/graph", async (req, res) => {
    const a = await findAssistant(deps, req.params.assistant_id);
    const graph = await registry.get(a.graph_id, a.config);
    const drawable = await graph.getGraphAsync({
      ...a.config,
      xray: req.query.xray === "true" || req.query.xray === "1",
    });
    sendJson(res, 200, drawable.toJSON());
  });

  r.get("/assistants/:assistant_id/schemas", async (req, res) => {
    const a = await findAssistant(deps, req.params.assistant_id);
    const schemas = deps.schemasFor?.(a.graph_id) ?? {};
    sendJson(res, 200, {
      graph_id: a.graph_id,
      input_schema: null,
      output_schema: null,
      state_schema: null,
      config_schema: null,
      context_schema: null,
      ...schemas,
    });
  });

  r.get("/assistants/:assistant_id/subgraphs", async (req, res) => {
    await findAssistant(deps, req.params.assistant_id);
    sendJson(res, 200, {});
  });

  r.post("/assistants/:assistant_id/versions", async (req, res) => {
    const a = await findAssistant(deps, req.params.assistant_id);
    const q = parseBody(AssistantVersionsSearch, req.body);
    sendJson(
      res,
      200,
      await storage.assistants.versions(a.assistant_id, {
        limit: q.limit ?? 10,
        offset: q.offset ?? 0,
        metadata: q.metadata ?? undefined,
      }),
    );
  });

  r.post("/assistants/:assistant_id/latest", async (req, res) => {
    const a = await findAssistant(deps, req.params.assistant_id);
    const { version } = parseBody(AssistantSetLatest, req.body);
    const updated = await storage.assistants.setLatest(a.assistant_id, version);
    if (!updated)
      throw new RefineryError(
        "not_found",
        `assistant ${a.assistant_id} has no version ${version}`,
        { field: "version" },
      );
    sendJson(res, 200, updated);
  });

  return r;
}

function pick<T extends object>(obj: T, keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => keys.includes(k))) as Partial<T>;
}
