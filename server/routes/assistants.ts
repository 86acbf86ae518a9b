// /assistants: a graph plus a saved config, versioned. Every graph has a system assistant
// (uuid5 of its id); a graph id is accepted wherever an assistant id is.
import { randomUUID } from "node:crypto";
import { Router } from "express";
import type { Request } from "express";
import { isAuthMatching } from "../../core/auth-filters.ts";
import { RefineryError } from "../../core/errors.ts";
import { restoreSecrets } from "../../core/secrets.ts";
import type { Assistant, Metadata } from "../../core/storage/types.ts";
import {
  accessFor,
  assistantIdOf,
  checkRecursionLimit,
  findAssistant,
  type AppDeps,
} from "../context.ts";
import { schemaHelpersFor } from "../../graphs/schemas/service.ts";
import { parseBody, sendJson } from "../http.ts";
import { publicAssistant } from "../redact.ts";
import { parseRecurse, subgraphSchemaOf, subgraphsOf } from "../subgraphs.ts";
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
    checkRecursionLimit(
      deps,
      typeof config?.recursion_limit === "number" ? config.recursion_limit : undefined,
    );
    if (!registry.entry(graphId)) {
      throw new RefineryError("invalid_input", `graph "${graphId}" is not registered`, {
        field: "graph_id",
        fix: `use one of: ${registry.ids().join(", ")}`,
      });
    }
    deps.validateConfig?.(graphId, config);
  };

  /** The assistant the caller reaches for `action` (the server's own are readable by all). */
  const reachable = async (req: Request, action: "read" | "update" | "delete") => {
    const idOrGraph = req.params.assistant_id as string;
    const access = await accessFor(
      req,
      `assistants:${action}`,
      { assistant_id: assistantIdOf(deps, idOrGraph) ?? idOrGraph },
      action === "read" ? "read" : "write",
      { system: true },
    );
    const assistant = await findAssistant(deps, idOrGraph, access);
    if (action !== "read") refuseSystem(assistant, action);
    return assistant;
  };

  r.post("/assistants", async (req, res) => {
    const body = parseBody(AssistantCreate, req.body);
    checkGraph(body.graph_id, body.config ?? undefined);
    refuseSystemMetadata(body.metadata);
    const value: Record<string, unknown> = {
      assistant_id: body.assistant_id ?? randomUUID(),
      graph_id: body.graph_id,
      config: body.config ?? {},
      context: body.context ?? {},
      metadata: { ...(body.metadata ?? {}) },
      if_exists: body.if_exists ?? "raise",
      name: body.name ?? "Untitled",
      description: body.description ?? null,
    };
    const access = await accessFor(req, "assistants:create", value, "write");
    refuseSystemMetadata(value.metadata as Metadata | undefined);
    const assistant = await storage.assistants.create(
      {
        assistant_id: String(value.assistant_id),
        graph_id: body.graph_id,
        config: body.config ?? {},
        context: body.context ?? {},
        metadata: (value.metadata ?? {}) as Metadata,
        name: body.name ?? "Untitled",
        description: body.description ?? null,
      },
      body.if_exists ?? "raise",
    );
    // if_exists "do_nothing" returns an existing assistant: only the caller's own.
    if (!isAuthMatching(assistant.metadata, access.filters)) {
      throw new RefineryError("conflict", `assistant ${assistant.assistant_id} already exists`, {
        field: "assistant_id",
        fix: "use another assistant_id",
      });
    }
    sendJson(res, 200, publicAssistant(assistant));
  });

  r.post("/assistants/search", async (req, res) => {
    const q = parseBody(AssistantSearch, req.body);
    const access = await accessFor(
      req,
      "assistants:search",
      {
        graph_id: q.graph_id,
        metadata: q.metadata,
        limit: q.limit ?? 10,
        offset: q.offset ?? 0,
      },
      "read",
      { system: true },
    );
    const filters = {
      ...access,
      graph_id: q.graph_id ?? undefined,
      name: q.name ?? undefined,
      metadata: q.metadata ?? undefined,
    };
    const found = await storage.assistants.search({
      ...filters,
      limit: q.limit ?? 10,
      offset: q.offset ?? 0,
      sort_by: q.sort_by ?? undefined,
      sort_order: q.sort_order ?? undefined,
    });
    // The LangGraph server sends the number of matches (every page) as X-Pagination-Total.
    res.setHeader("X-Pagination-Total", String(await storage.assistants.count(filters)));
    const rows = found.map(publicAssistant);
    sendJson(res, 200, q.select?.length ? rows.map((a) => pick(a, q.select ?? [])) : rows);
  });

  r.post("/assistants/count", async (req, res) => {
    const q = parseBody(AssistantCount, req.body);
    const access = await accessFor(
      req,
      "assistants:search",
      { graph_id: q.graph_id, metadata: q.metadata, limit: 0, offset: 0 },
      "read",
      { system: true },
    );
    sendJson(
      res,
      200,
      await storage.assistants.count({
        ...access,
        graph_id: q.graph_id ?? undefined,
        name: q.name ?? undefined,
        metadata: q.metadata ?? undefined,
      }),
    );
  });

  r.get("/assistants/:assistant_id", async (req, res) => {
    sendJson(res, 200, publicAssistant(await reachable(req, "read")));
  });

  r.patch("/assistants/:assistant_id", async (req, res) => {
    const patch = parseBody(AssistantPatch, req.body);
    refuseSystemMetadata(patch.metadata);
    const idOrGraph = req.params.assistant_id;
    const value: Record<string, unknown> = {
      assistant_id: assistantIdOf(deps, idOrGraph) ?? idOrGraph,
      graph_id: patch.graph_id ?? undefined,
      config: patch.config ?? undefined,
      metadata: patch.metadata ?? undefined,
      name: patch.name ?? undefined,
      description: patch.description,
    };
    const access = await accessFor(req, "assistants:update", value, "write", { system: true });
    const current = await findAssistant(deps, idOrGraph, access);
    refuseSystem(current, "update");
    refuseSystemMetadata(value.metadata as Metadata | undefined);
    // A config read back with "***" in place of its secrets keeps them.
    const config = patch.config ? restoreSecrets(patch.config, current.config) : undefined;
    const context = patch.context ? restoreSecrets(patch.context, current.context) : undefined;
    const graphId = patch.graph_id ?? current.graph_id;
    checkGraph(graphId, config ?? current.config);
    const updated = await storage.assistants.update(
      current.assistant_id,
      {
        graph_id: patch.graph_id ?? undefined,
        config,
        context,
        metadata: (value.metadata ?? undefined) as Metadata | undefined,
        name: patch.name ?? undefined,
        description: patch.description === undefined ? undefined : patch.description,
      },
      access,
    );
    if (!updated)
      throw new RefineryError("not_found", "Assistant not found", { field: "assistant_id" });
    sendJson(res, 200, publicAssistant(updated));
  });

  r.delete("/assistants/:assistant_id", async (req, res) => {
    const a = await reachable(req, "delete");
    await storage.assistants.delete(a.assistant_id);
    // ?delete_threads=true (the SDK's deleteThreads) also deletes the caller's threads of this
    // assistant (metadata.assistant_id), with their runs and checkpoints, as the LangGraph
    // server does (issue 22).
    if (req.query.delete_threads === "true") {
      const search = await accessFor(
        req,
        "threads:search",
        { metadata: { assistant_id: a.assistant_id }, limit: 1000, offset: 0 },
        "read",
      );
      const ids: string[] = [];
      for (let offset = 0; ; offset += 1000) {
        const page = await storage.threads.search({
          ...search,
          metadata: { assistant_id: a.assistant_id },
          limit: 1000,
          offset,
        });
        ids.push(...page.map((t) => t.thread_id));
        if (page.length < 1000) break;
      }
      for (const threadId of ids) {
        const access = await accessFor(req, "threads:delete", { thread_id: threadId }, "write");
        for (const run of await storage.runs.inflight(threadId))
          await deps.executor.cancel(run, "interrupt");
        await deps.checkpoints.deleteThread(threadId);
        await storage.threads.delete(threadId, access);
      }
    }
    // The deleted ids, as the LangGraph server answers (issue 22).
    sendJson(res, 200, [a.assistant_id]);
  });

  r.get("/assistants/:assistant_id/graph", async (req, res) => {
    const a = await reachable(req, "read");
    const graph = await registry.get(a.graph_id, a.config);
    const drawable = await graph.getGraphAsync({
      ...a.config,
      xray: req.query.xray === "true" || req.query.xray === "1",
    });
    sendJson(res, 200, drawable.toJSON());
  });

  r.get("/assistants/:assistant_id/schemas", async (req, res) => {
    const a = await reachable(req, "read");
    // Absent keys (a schema the graph does not declare) are left out, as the reference does.
    const schemas = (await deps.schemasFor?.(a.graph_id, a.config)) ?? {};
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

  // The graph's subgraphs by namespace (`node`, `node|inner` with recurse), with their schemas;
  // a namespace path segment narrows the answer to that subgraph.
  const subgraphs = async (req: Request, res: Parameters<typeof sendJson>[0]) => {
    const recurse = parseRecurse(req.query.recurse);
    const namespace = req.params.namespace as string | undefined;
    const a = await reachable(req, "read");
    const graph = await registry.get(a.graph_id, a.config);
    const file = registry.entry(a.graph_id)?.file?.path;
    const helpers = file ? await schemaHelpersFor(file) : undefined;
    sendJson(
      res,
      200,
      await subgraphsOf(graph, namespace, recurse, (sub) => subgraphSchemaOf(sub, helpers)),
    );
  };
  r.get("/assistants/:assistant_id/subgraphs", subgraphs);
  r.get("/assistants/:assistant_id/subgraphs/:namespace", subgraphs);

  r.post("/assistants/:assistant_id/versions", async (req, res) => {
    const q = parseBody(AssistantVersionsSearch, req.body);
    const idOrGraph = req.params.assistant_id;
    const access = await accessFor(
      req,
      "assistants:read",
      { assistant_id: assistantIdOf(deps, idOrGraph) ?? idOrGraph },
      "read",
      { system: true },
    );
    const a = await findAssistant(deps, idOrGraph, access);
    const versions = await storage.assistants.versions(a.assistant_id, {
      ...access,
      limit: q.limit ?? 10,
      offset: q.offset ?? 0,
      metadata: q.metadata ?? undefined,
    });
    sendJson(res, 200, versions.map(publicAssistant));
  });

  r.post("/assistants/:assistant_id/latest", async (req, res) => {
    const { version } = parseBody(AssistantSetLatest, req.body);
    const idOrGraph = req.params.assistant_id;
    const access = await accessFor(
      req,
      "assistants:update",
      { assistant_id: assistantIdOf(deps, idOrGraph) ?? idOrGraph, version },
      "write",
      { system: true },
    );
    const a = await findAssistant(deps, idOrGraph, access);
    refuseSystem(a, "update");
    const updated = await storage.assistants.setLatest(a.assistant_id, version, access);
    if (!updated)
      throw new RefineryError(
        "not_found",
        `assistant ${a.assistant_id} has no version ${version}`,
        { field: "version" },
      );
    sendJson(res, 200, publicAssistant(updated));
  });

  return r;
}

/** The assistant every graph gets is the server's: it can be read and run, not changed. */
function refuseSystem(a: Assistant, action: "update" | "delete"): void {
  if (a.metadata.created_by !== "system") return;
  throw new RefineryError(
    "conflict",
    `assistant "${a.name}" is the system assistant of graph "${a.graph_id}" and cannot be ${action === "delete" ? "deleted" : "changed"}`,
    {
      field: "assistant_id",
      fix: `create your own assistant (POST /assistants with graph_id "${a.graph_id}") and ${action === "delete" ? "delete that one" : "change that one"}`,
    },
  );
}

/** Only the server marks assistants as its own (readable by every tenant). */
function refuseSystemMetadata(metadata: Metadata | null | undefined): void {
  if (metadata?.created_by === "system") {
    throw new RefineryError("invalid_input", 'created_by "system" is reserved for the server', {
      field: "metadata.created_by",
      fix: "leave created_by out, or use another value",
    });
  }
}

function pick<T extends object>(obj: T, keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => keys.includes(k))) as Partial<T>;
}
