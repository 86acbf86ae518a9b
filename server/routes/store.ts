// The Store API (LangGraph's /store/*): put, get, delete and search items, list namespaces. The
// store is the one graphs get as `config.store` (core/memory/user-store.ts). Every call goes
// through the auth handlers (store:put, store:get, store:delete, store:search,
// store:list_namespaces); with built-in API keys each tenant sees only its own items. A handler
// may rewrite `value.namespace`, as on LangGraph's server; the rewritten namespace is used.
import { Router, type Request } from "express";
import { fromZodError, RefineryError } from "../../core/errors.ts";
import { parseFilter } from "../../core/memory/store-ops.ts";
import type { PartitionedStore } from "../../core/memory/user-store.ts";
import type { Item, SearchItem } from "@langchain/langgraph-checkpoint";
import { authOf, type AuthEvent, type Operation } from "../auth/request.ts";
import type { AppDeps } from "../context.ts";
import { parseBody, sendJson } from "../http.ts";
import {
  StoreDeleteItem,
  StoreGetItemQuery,
  StoreListNamespaces,
  StoreNamespace,
  StorePutItem,
  StoreSearchItems,
} from "../store-schemas.ts";

/** An item as LangGraph's server answers it (snake_case times). */
function toApi(item: Item | SearchItem | null): Record<string, unknown> | null {
  if (!item) return null;
  const { createdAt, updatedAt, ...rest } = item;
  return { ...rest, created_at: createdAt, updated_at: updatedAt };
}

export function storeRoutes(deps: AppDeps): Router {
  const r = Router();

  function storeFor(req: Request): PartitionedStore {
    if (!deps.store) {
      throw new RefineryError("not_found", "This server has no store", {
        fix: "start the server with `refinery serve` (the store is opened with the database)",
      });
    }
    return deps.store.forPartition(authOf(req).storePartition ?? "");
  }

  /** Runs the auth handler; returns the namespace it left in `value` (validated again). */
  async function authorize(
    req: Request,
    event: AuthEvent,
    value: Record<string, unknown> & { namespace?: string[] },
    operation: Operation,
    field: string,
  ): Promise<string[] | undefined> {
    const before = value.namespace;
    await authOf(req).authorize(event, value, operation);
    if (value.namespace === before || value.namespace == null) return before;
    const parsed = StoreNamespace.safeParse(value.namespace);
    if (!parsed.success) {
      throw new RefineryError(
        "internal",
        `the auth handler for ${event} set an invalid namespace`,
        {
          field,
          fix: "make the handler set value.namespace to an array of non-empty labels",
        },
      );
    }
    return parsed.data;
  }

  r.put("/store/items", async (req, res) => {
    const body = parseBody(StorePutItem, req.body);
    const store = storeFor(req);
    const namespace = await authorize(
      req,
      "store:put",
      { namespace: body.namespace, key: body.key, value: body.value },
      "write",
      "namespace",
    );
    await store.putItem(namespace!, body.key, body.value, {
      ...(body.index != null ? { index: body.index } : {}),
      ttl: body.ttl ?? null,
    });
    res.status(204).end();
  });

  r.get("/store/items", async (req, res) => {
    const query = parseBody(StoreGetItemQuery, req.query, "query");
    const parsed = StoreNamespace.safeParse(query.namespace.split("."));
    if (!parsed.success) throw fromZodError(parsed.error, "query.namespace");
    const namespace = await authorize(
      req,
      "store:get",
      { namespace: parsed.data, key: query.key },
      "read",
      "namespace",
    );
    const refresh = query.refresh_ttl === undefined ? undefined : query.refresh_ttl === "true";
    sendJson(res, 200, toApi(await storeFor(req).getItem(namespace!, query.key, refresh)));
  });

  r.delete("/store/items", async (req, res) => {
    const body = parseBody(StoreDeleteItem, req.body);
    const store = storeFor(req);
    const namespace = await authorize(
      req,
      "store:delete",
      { namespace: body.namespace, key: body.key },
      "write",
      "namespace",
    );
    await store.delete(namespace!, body.key);
    res.status(204).end();
  });

  r.post("/store/items/search", async (req, res) => {
    const body = parseBody(StoreSearchItems, req.body);
    if (body.filter) parseFilter(body.filter); // 422 naming filter.<field> before anything runs
    const store = storeFor(req);
    const namespace = await authorize(
      req,
      "store:search",
      {
        namespace: body.namespace_prefix ?? [],
        filter: body.filter ?? undefined,
        limit: body.limit ?? 10,
        offset: body.offset ?? 0,
        query: body.query ?? undefined,
      },
      "read",
      "namespace_prefix",
    );
    const items = await store.searchItems(namespace ?? [], {
      ...(body.filter ? { filter: body.filter } : {}),
      limit: body.limit ?? 10,
      offset: body.offset ?? 0,
      ...(body.query != null ? { query: body.query } : {}),
      ...(body.refresh_ttl != null ? { refreshTtl: body.refresh_ttl } : {}),
    });
    sendJson(res, 200, { items: items.map(toApi) });
  });

  r.post("/store/namespaces", async (req, res) => {
    const body = parseBody(StoreListNamespaces, req.body);
    const store = storeFor(req);
    const prefix = await authorize(
      req,
      "store:list_namespaces",
      {
        namespace: body.prefix ?? undefined,
        suffix: body.suffix ?? undefined,
        max_depth: body.max_depth ?? undefined,
        limit: body.limit ?? 100,
        offset: body.offset ?? 0,
      },
      "read",
      "prefix",
    );
    const namespaces = await store.listNamespaces({
      ...(prefix && prefix.length > 0 ? { prefix } : {}),
      ...(body.suffix ? { suffix: body.suffix } : {}),
      ...(body.max_depth != null ? { maxDepth: body.max_depth } : {}),
      limit: body.limit ?? 100,
      offset: body.offset ?? 0,
    });
    sendJson(res, 200, { namespaces });
  });

  return r;
}
