// /threads: CRUD, search, copy, state (get, update, by checkpoint) and history.
import { randomUUID } from "node:crypto";
import { Router } from "express";
import { isAuthMatching } from "../../core/auth-filters.ts";
import { RefineryError } from "../../core/errors.ts";
import type { Metadata, Thread } from "../../core/storage/types.ts";
import { accessFor, EMPTY_STATE, findThread, graphOfThread, type AppDeps } from "../context.ts";
import { parseBody, sendJson } from "../http.ts";
import {
  ThreadCount,
  ThreadCreate,
  ThreadHistory,
  ThreadPatch,
  ThreadSearch,
  ThreadStateCheckpoint,
  ThreadStateUpdate,
} from "../schemas.ts";
import { publicState, publicThread } from "../redact.ts";
import { toCommand } from "../run-runner.ts";
import { interruptsOf, toPlain, toThreadState } from "../serde.ts";

/** A thread TTL as parsed (`{ttl: minutes}`), in ms. */
const ttlMs = (ttl: { ttl: number }): number => Math.max(1, Math.round(ttl.ttl * 60_000));

/** A command as run: without the `lg_name` tag that `Command.toJSON()` adds. */
function withoutName<T extends { lg_name?: unknown }>(command: T): Omit<T, "lg_name"> {
  const { lg_name: _name, ...rest } = command;
  return rest;
}

export function threadRoutes(deps: AppDeps): Router {
  const r = Router();
  const { storage } = deps;

  r.post("/threads", async (req, res) => {
    const body = parseBody(ThreadCreate, req.body);
    // The SDK sends `graphId` as metadata.graph_id: a misspelt one would only surface later as
    // "Thread has no graph yet".
    const metaGraph = body.metadata?.graph_id;
    const graphId = body.graph_id ?? (typeof metaGraph === "string" ? metaGraph : undefined);
    if (graphId && !deps.registry.entry(graphId)) {
      throw new RefineryError("invalid_input", `graph "${graphId}" is not registered`, {
        field: body.graph_id ? "graph_id" : "metadata.graph_id",
        fix: `use one of: ${deps.registry.ids().join(", ")}`,
      });
    }
    const value: Record<string, unknown> = {
      thread_id: body.thread_id ?? randomUUID(),
      metadata: {
        ...(body.metadata ?? {}),
        ...(body.graph_id ? { graph_id: body.graph_id } : {}),
      },
      if_exists: body.if_exists ?? "raise",
    };
    const supersteps = body.supersteps?.length ? body.supersteps : undefined;
    if (supersteps && !graphId) {
      throw new RefineryError("invalid_input", "supersteps need the thread's graph", {
        field: "graph_id",
        fix: "send graph_id (the SDK's graphId) with supersteps: the updates are made as that graph's nodes",
      });
    }
    const access = await accessFor(req, "threads:create", value, "write");
    const threadId = String(value.thread_id);
    const existed = supersteps ? Boolean(await storage.threads.get(threadId)) : false;
    const thread = await storage.threads.create(
      {
        thread_id: threadId,
        metadata: (value.metadata ?? {}) as Metadata,
        ...(body.ttl ? { ttl_ms: ttlMs(body.ttl) } : {}),
      },
      body.if_exists ?? "raise",
    );
    // if_exists "do_nothing" returns an existing thread: only the caller's own.
    if (!isAuthMatching(thread.metadata, access.filters)) {
      throw new RefineryError("conflict", `thread ${thread.thread_id} already exists`, {
        field: "thread_id",
        fix: "use another thread_id",
      });
    }
    if (!supersteps) {
      sendJson(res, 200, publicThread(thread));
      return;
    }
    try {
      await applySupersteps(thread, supersteps);
    } catch (err) {
      // A new thread whose supersteps were refused is not left behind.
      if (!existed) {
        await deps.checkpoints.deleteThread(thread.thread_id).catch(() => undefined);
        await storage.threads.delete(thread.thread_id).catch(() => undefined);
      }
      throw err;
    }
    sendJson(res, 200, publicThread((await storage.threads.get(thread.thread_id)) ?? thread));
  });

  /**
   * Applies a thread create's supersteps as the LangGraph server does (the graph's
   * bulkUpdateState: each superstep's updates are one step, made as their nodes), then records
   * the thread's state.
   */
  const applySupersteps = async (
    thread: Thread,
    supersteps: NonNullable<ReturnType<typeof ThreadCreate.parse>["supersteps"]>,
  ) => {
    if ((await storage.runs.inflight(thread.thread_id)).length > 0) {
      throw new RefineryError("busy", "Thread is busy", {
        field: "thread_id",
        fix: "wait for the thread's run to finish (or cancel it), then apply the supersteps",
      });
    }
    const graph = (await graphOfThread(deps, thread)) as
      | (Awaited<ReturnType<typeof graphOfThread>> & {
          bulkUpdateState?: (
            config: Record<string, unknown>,
            steps: { updates: { values: unknown; asNode: string }[] }[],
          ) => Promise<unknown>;
        })
      | undefined;
    if (!graph?.bulkUpdateState) {
      throw new RefineryError("invalid_input", "this graph cannot take supersteps", {
        field: "graph_id",
        fix: "create the thread, then POST /threads/{id}/state once per update",
      });
    }
    try {
      await graph.bulkUpdateState(
        {
          configurable: { thread_id: thread.thread_id, checkpoint_ns: "" },
          metadata: { graph_id: thread.metadata.graph_id },
        },
        supersteps.map((step) => ({
          updates: step.updates.map((u) => ({
            values: u.command ? toCommand(withoutName(u.command)) : (u.values ?? null),
            asNode: u.as_node,
          })),
        })),
      );
    } catch (err) {
      throw new RefineryError("invalid_input", `supersteps rejected: ${(err as Error).message}`, {
        field: "supersteps",
        fix: "name nodes of the thread's graph in as_node, with values its state accepts",
      });
    }
    await recordState(thread, graph);
  };

  /** The thread's snapshot after a state update: its values, interrupts and status. */
  const recordState = async (
    thread: Thread,
    graph: NonNullable<Awaited<ReturnType<typeof graphOfThread>>>,
  ) => {
    const state = await graph.getState({
      configurable: { thread_id: thread.thread_id, checkpoint_ns: "" },
    });
    await storage.threads.setSnapshot(thread.thread_id, {
      status:
        state.next.length > 0 && Object.keys(interruptsOf(state)).length > 0
          ? "interrupted"
          : thread.status === "error"
            ? "idle"
            : thread.status === "busy"
              ? "idle"
              : thread.status,
      values: toPlain(state.values),
      interrupts: interruptsOf(state),
    });
  };

  r.post("/threads/search", async (req, res) => {
    const q = parseBody(ThreadSearch, req.body);
    const access = await accessFor(
      req,
      "threads:search",
      {
        metadata: q.metadata,
        ids: q.ids,
        status: q.status,
        values: q.values,
        limit: q.limit ?? 10,
        offset: q.offset ?? 0,
      },
      "read",
    );
    const filters = {
      ...access,
      metadata: q.metadata ?? undefined,
      values: q.values ?? undefined,
      status: q.status ?? undefined,
    };
    const found = await storage.threads.search({
      ...filters,
      ids: q.ids ?? undefined,
      limit: q.limit ?? 10,
      offset: q.offset ?? 0,
      sort_by: q.sort_by ?? undefined,
      sort_order: q.sort_order ?? undefined,
    });
    // The LangGraph server sends the number of matches (every page) as X-Pagination-Total.
    const total = q.ids
      ? (await storage.threads.search({ ...filters, ids: q.ids, limit: q.ids.length, offset: 0 }))
          .length
      : await storage.threads.count(filters);
    res.setHeader("X-Pagination-Total", String(total));
    const rows = found.map(publicThread);
    const select = q.select;
    sendJson(
      res,
      200,
      select?.length
        ? rows.map((t) => Object.fromEntries(Object.entries(t).filter(([k]) => select.includes(k))))
        : rows,
    );
  });

  r.post("/threads/count", async (req, res) => {
    const q = parseBody(ThreadCount, req.body);
    const access = await accessFor(
      req,
      "threads:search",
      { metadata: q.metadata, status: q.status, values: q.values, limit: 0, offset: 0 },
      "read",
    );
    sendJson(
      res,
      200,
      await storage.threads.count({
        ...access,
        metadata: q.metadata ?? undefined,
        values: q.values ?? undefined,
        status: q.status ?? undefined,
      }),
    );
  });

  /** The thread the caller may `read` (or act on), or the same 404 as a missing one. */
  const reachable = async (
    req: Parameters<typeof accessFor>[0],
    action: "read" | "update" | "delete",
    extra: Record<string, unknown> = {},
  ) => {
    const threadId = req.params.thread_id as string;
    const operation = action === "read" ? "read" : "write";
    const access = await accessFor(
      req,
      `threads:${action}`,
      { thread_id: threadId, ...extra },
      operation,
    );
    return { thread: await findThread(deps, threadId, access), access };
  };

  r.get("/threads/:thread_id", async (req, res) => {
    sendJson(res, 200, publicThread((await reachable(req, "read")).thread));
  });

  r.patch("/threads/:thread_id", async (req, res) => {
    const body = parseBody(ThreadPatch, req.body);
    const value: Record<string, unknown> = {
      thread_id: req.params.thread_id,
      metadata: body.metadata ?? undefined,
    };
    const access = await accessFor(req, "threads:update", value, "write");
    await findThread(deps, req.params.thread_id, access);
    const updated = await storage.threads.update(
      req.params.thread_id,
      {
        metadata: (value.metadata ?? undefined) as Metadata | undefined,
        // null: the thread no longer expires; absent: its TTL stays.
        ...(body.ttl !== undefined ? { ttl_ms: body.ttl ? ttlMs(body.ttl) : null } : {}),
      },
      access,
    );
    if (!updated) throw new RefineryError("not_found", "Thread not found", { field: "thread_id" });
    sendJson(res, 200, publicThread(updated));
  });

  r.delete("/threads/:thread_id", async (req, res) => {
    const { thread, access } = await reachable(req, "delete");
    for (const run of await storage.runs.inflight(thread.thread_id))
      await deps.executor.cancel(run, "interrupt");
    await deps.checkpoints.deleteThread(thread.thread_id);
    await storage.threads.delete(thread.thread_id, access);
    res.status(204).end();
  });

  r.post("/threads/:thread_id/copy", async (req, res) => {
    const { thread: from } = await reachable(req, "read");
    const threadId = randomUUID();
    // The copy's metadata names the copy, as the LangGraph server stamps it.
    const value: Record<string, unknown> = {
      thread_id: threadId,
      metadata: { ...from.metadata, thread_id: threadId },
    };
    await accessFor(req, "threads:create", value, "write");
    const copy = await storage.threads.create({
      thread_id: threadId,
      metadata: (value.metadata ?? {}) as Metadata,
    });
    await deps.checkpoints.copyThread(from.thread_id, threadId);
    await storage.threads.setSnapshot(threadId, {
      status: from.status === "busy" ? "idle" : from.status,
      values: from.values,
      interrupts: from.interrupts,
      error: from.error,
    });
    sendJson(res, 200, publicThread((await storage.threads.get(threadId)) ?? copy));
  });

  const stateAt = async (
    thread: Thread,
    checkpoint: Record<string, unknown> | undefined,
    subgraphs: boolean,
  ) => {
    const graph = await graphOfThread(deps, thread);
    if (!graph) return EMPTY_STATE;
    const state = await graph.getState(
      { configurable: { thread_id: thread.thread_id, checkpoint_ns: "", ...checkpoint } },
      { subgraphs },
    );
    if (checkpoint?.checkpoint_id && !state.createdAt)
      throw new RefineryError("not_found", "Checkpoint not found", { field: "checkpoint_id" });
    return state.createdAt ? publicState(toThreadState(state)) : EMPTY_STATE;
  };

  r.get("/threads/:thread_id/state", async (req, res) => {
    const { thread } = await reachable(req, "read");
    sendJson(res, 200, await stateAt(thread, undefined, req.query.subgraphs === "true"));
  });

  r.get("/threads/:thread_id/state/:checkpoint_id", async (req, res) => {
    const { thread } = await reachable(req, "read");
    sendJson(
      res,
      200,
      await stateAt(
        thread,
        { checkpoint_id: req.params.checkpoint_id },
        req.query.subgraphs === "true",
      ),
    );
  });

  r.post("/threads/:thread_id/state/checkpoint", async (req, res) => {
    const { thread } = await reachable(req, "read");
    const body = parseBody(ThreadStateCheckpoint, req.body);
    // Without a checkpoint: the latest state, as the LangGraph server answers (issue 22).
    const { thread_id: _ignored, ...checkpoint } = body.checkpoint ?? {};
    sendJson(res, 200, await stateAt(thread, checkpoint, Boolean(body.subgraphs)));
  });

  r.post("/threads/:thread_id/state", async (req, res) => {
    const { thread } = await reachable(req, "update");
    const body = parseBody(ThreadStateUpdate, req.body);
    if ((await storage.runs.inflight(thread.thread_id)).length > 0) {
      throw new RefineryError("busy", "Thread is busy", {
        field: "thread_id",
        fix: "wait for the thread's run to finish (or cancel it), then update its state",
      });
    }
    const graph = await graphOfThread(deps, thread);
    if (!graph) {
      throw new RefineryError("invalid_input", "Thread has no graph yet", {
        field: "thread_id",
        fix: "run the thread once, or create it with graph_id",
      });
    }
    const checkpoint =
      body.checkpoint ?? (body.checkpoint_id ? { checkpoint_id: body.checkpoint_id } : {});
    const { thread_id: _ignored, ...ref } = checkpoint;
    await requireSubgraphCheckpoint(thread.thread_id, ref);
    let next;
    try {
      next = await graph.updateState(
        {
          configurable: { thread_id: thread.thread_id, checkpoint_ns: "", ...ref },
          // Its checkpoint names the graph, as the LangGraph server's do (issue 22).
          metadata: { graph_id: thread.metadata.graph_id },
        },
        body.values ?? null,
        body.as_node ?? undefined,
      );
    } catch (err) {
      throw new RefineryError("invalid_input", `state update rejected: ${(err as Error).message}`, {
        field: body.as_node ? "as_node" : "values",
      });
    }
    await recordState(thread, graph);
    sendJson(res, 200, { checkpoint: next.configurable ?? null });
  });

  /**
   * An update of a subgraph's state (`checkpoint.checkpoint_ns` set) must name a namespace the
   * thread has checkpoints in (and, with a checkpoint_id, that checkpoint): LangGraph would
   * otherwise start a new history under any namespace that begins with a subgraph's name.
   */
  const requireSubgraphCheckpoint = async (threadId: string, ref: Record<string, unknown>) => {
    const ns = ref.checkpoint_ns;
    if (typeof ns !== "string" || ns === "") return;
    const id = typeof ref.checkpoint_id === "string" ? ref.checkpoint_id : undefined;
    const found = await deps.checkpointer.getTuple({
      configurable: {
        thread_id: threadId,
        checkpoint_ns: ns,
        ...(id ? { checkpoint_id: id } : {}),
      },
    });
    if (!found) {
      throw new RefineryError(
        "not_found",
        id
          ? `the thread has no checkpoint ${id} in namespace "${ns}"`
          : `the thread has no subgraph checkpoint in namespace "${ns}"`,
        {
          field: id ? "checkpoint.checkpoint_id" : "checkpoint.checkpoint_ns",
          fix: "use a task's checkpoint from GET /threads/{id}/state (with subgraphs=true for nested ones); a subgraph that has not started yet takes its state from its parent's (checkpoint_ns \"\")",
        },
      );
    }
  };

  const history = async (
    thread: Thread,
    q: {
      limit?: number | null;
      before?: unknown;
      metadata?: Record<string, unknown> | null;
      checkpoint?: Record<string, unknown> | null;
    },
  ) => {
    const graph = await graphOfThread(deps, thread);
    if (!graph) return [];
    const before =
      typeof q.before === "string"
        ? { configurable: { checkpoint_id: q.before } }
        : ((q.before as Record<string, unknown> | undefined) ?? undefined);
    const { thread_id: _ignored, ...ref } = q.checkpoint ?? {};
    const out = [];
    for await (const s of graph.getStateHistory(
      { configurable: { thread_id: thread.thread_id, checkpoint_ns: "", ...ref } },
      { limit: q.limit ?? 10, before, filter: q.metadata ?? undefined },
    )) {
      out.push(publicState(toThreadState(s)));
    }
    return out;
  };

  r.get("/threads/:thread_id/history", async (req, res) => {
    const { thread } = await reachable(req, "read");
    const limit = req.query.limit === undefined ? 10 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new RefineryError("invalid_input", "limit must be an integer from 1 to 1000", {
        field: "limit",
      });
    sendJson(
      res,
      200,
      await history(thread, {
        limit,
        before: typeof req.query.before === "string" ? req.query.before : undefined,
      }),
    );
  });

  r.post("/threads/:thread_id/history", async (req, res) => {
    const { thread } = await reachable(req, "read");
    sendJson(res, 200, await history(thread, parseBody(ThreadHistory, req.body)));
  });

  return r;
}
