// /graphs: declarative graphs registered over HTTP (JSON or YAML bodies), versioned, listed,
// read and deleted. A registered graph gets its system assistant, so runs name it by its id.
import express, { Router } from "express";
import { z } from "zod";
import { RefineryError } from "../../core/errors.ts";
import type { Storage } from "../../core/storage/types.ts";
import { parseSpecDocument } from "../../graphs/declarative/documents.ts";
import type { GraphSpecService } from "../../graphs/declarative/service.ts";
import { systemAssistantId } from "../../graphs/registry.ts";
import { redactSecrets } from "../../core/secrets.ts";
import { authOf } from "../auth/request.ts";
import { parseBody, sendJson } from "../http.ts";

export interface GraphSpecRouteDeps {
  graphSpecs: GraphSpecService;
  storage: Storage;
  bodyLimit?: string;
}

const YAML_TYPES = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"];

export const GraphSpecQuery = z
  .object({
    version: z.coerce
      .number({ error: "version must be a positive integer" })
      .int("version must be a positive integer")
      .min(1, "version must be a positive integer")
      .optional(),
  })
  .strict();

export function graphSpecRoutes(deps: GraphSpecRouteDeps): Router {
  const r = Router();
  const { graphSpecs, storage } = deps;
  r.use("/graphs", express.text({ type: YAML_TYPES, limit: deps.bodyLimit ?? "1mb" }));

  const document = (body: unknown): unknown =>
    typeof body === "string" ? parseSpecDocument(body, "body", "yaml") : body;

  const register = async (body: unknown, graphId?: string) => {
    const result = await graphSpecs.register(document(body), graphId);
    const assistant = await storage.assistants.create(
      {
        assistant_id: systemAssistantId(result.graph_id),
        graph_id: result.graph_id,
        name: result.graph_id,
        metadata: { created_by: "system" },
      },
      "do_nothing",
    );
    return { ...result, assistant_id: assistant.assistant_id };
  };

  // Registering or deleting a graph changes the server for every tenant: admins only.
  r.post("/graphs", async (req, res) => {
    authOf(req).check("admin");
    const result = await register(req.body);
    sendJson(res, result.created ? 201 : 200, result);
  });

  r.put("/graphs/:graph_id", async (req, res) => {
    authOf(req).check("admin");
    const result = await register(req.body, req.params.graph_id);
    sendJson(res, result.created ? 201 : 200, result);
  });

  r.get("/graphs", async (req, res) => {
    authOf(req).check("read");
    sendJson(res, 200, redactSecrets(await graphSpecs.list()));
  });

  r.get("/graphs/:graph_id", async (req, res) => {
    authOf(req).check("read");
    const { version } = parseBody(GraphSpecQuery, req.query);
    const found = await graphSpecs.get(req.params.graph_id, version);
    if (!found) {
      throw new RefineryError(
        "not_found",
        version === undefined
          ? `no declarative graph "${req.params.graph_id}"`
          : `graph "${req.params.graph_id}" has no version ${version}`,
        { field: version === undefined ? "graph_id" : "version", fix: "see GET /graphs" },
      );
    }
    sendJson(res, 200, redactSecrets(found));
  });

  r.delete("/graphs/:graph_id", async (req, res) => {
    authOf(req).check("admin");
    const graphId = req.params.graph_id;
    if (!(await graphSpecs.delete(graphId))) {
      throw new RefineryError("not_found", `no declarative graph "${graphId}"`, {
        field: "graph_id",
        fix: "see GET /graphs",
      });
    }
    await storage.assistants.delete(systemAssistantId(graphId));
    res.status(204).end();
  });

  return r;
}
