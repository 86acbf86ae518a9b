// Lesson retrieval by embeddings over real HTTP: openLearning with REFINERY_EMBEDDINGS_MODEL's
// settings calls the OpenAI-compatible stub's /v1/embeddings for each lesson and each query.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processSettingsFromEnv } from "../../core/config.ts";
import { sqliteLearningSource } from "../../core/storage/sqlite/learning-records.ts";
import { openLearning } from "../../graphs/learning.ts";
import { startOpenAIStub, type OpenAIStub } from "../support/openai-stub.ts";

let stub: OpenAIStub;
const dir = mkdtempSync(join(tmpdir(), "refinery-embeddings-"));
beforeAll(async () => {
  stub = await startOpenAIStub();
});
afterAll(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("lessons ranked by embeddings", () => {
  it("embeds lessons and tasks with the configured model and ranks by similarity", async () => {
    const settings = processSettingsFromEnv({
      REFINERY_DB: join(dir, "e.db"),
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: stub.url,
      REFINERY_EMBEDDINGS_MODEL: "stub-embedding-model",
    });
    const db = new Database(settings.dbPath);
    const learning = await openLearning(settings, sqliteLearningSource(db));
    try {
      const memory = learning.memory!;
      expect(memory.usesEmbeddings).toBe(true);
      await memory.add("a", {
        text: "Convert minutes to hours before computing a speed.",
        graph_id: "refine",
        source: "manual",
      });
      await memory.add("a", {
        text: "Return every required JSON field with the schema's type.",
        graph_id: "refine",
        source: "manual",
      });
      const hits = await memory.retrieve(
        "a",
        "What speed, in hours and minutes, does the bus keep?",
      );
      expect(hits[0]?.text).toBe("Convert minutes to hours before computing a speed.");
      expect(stub.embeddingRequests.length).toBeGreaterThanOrEqual(3);
      expect(stub.embeddingRequests.every((r) => r.model === "stub-embedding-model")).toBe(true);
      expect(JSON.stringify(await memory.get("a", hits[0]!.id))).toContain('"embedding":[');
    } finally {
      await learning.close();
      db.close();
    }
  });
});
