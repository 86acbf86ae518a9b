// Where the server finds langgraph.json when no --config is given: REFINERY_CONFIG, else
// ./langgraph.json in the working directory when present, else only the built-in graphs. Each
// case starts the real server on a loopback port and asks it through the official SDK.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterEach, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../graphs/registry.ts";
import { silentLogger } from "../../server/log.ts";
import { startServer, type RunningServer } from "../../server/start.ts";
import { FIXTURE_CONFIG } from "../support/server.ts";
import { databaseEnv } from "../support/test-backend.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const undo of cleanup.splice(0).reverse()) await undo();
});

async function start(env: Record<string, string>): Promise<{ client: Client }> {
  const dir = mkdtempSync(join(tmpdir(), "refinery-config-"));
  const running: RunningServer = await startServer({
    env: { ...databaseEnv(join(dir, "refinery.db")), REFINERY_RUN_THREADS: "0", ...env },
    port: 0,
    host: "127.0.0.1",
    log: silentLogger,
  });
  cleanup.push(
    () => running.close(1_000),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  return { client: new Client({ apiUrl: running.url, callerOptions: { maxRetries: 0 } }) };
}

/** The graph ids the server has system assistants for. */
async function graphIds(client: Client): Promise<string[]> {
  const system = await client.assistants.search({ metadata: { created_by: "system" } });
  return system.map((a) => a.graph_id).sort();
}

describe("langgraph.json discovery", () => {
  it("reads the file REFINERY_CONFIG names, and serves its graphs", async () => {
    const { client } = await start({ REFINERY_CONFIG: FIXTURE_CONFIG });
    expect(await graphIds(client)).toEqual([
      "approval",
      "busy",
      "failing",
      "hang",
      "refine",
      "slow",
    ]);
    const assistant = await client.assistants.get(systemAssistantId("slow"));
    expect(assistant.graph_id).toBe("slow");
    const thread = await client.threads.create();
    const values = await client.runs.wait(thread.thread_id, "slow", {
      input: { topic: "from REFINERY_CONFIG", delayMs: 0 },
    });
    expect(values).toMatchObject({ log: ["one", "two", "three"] });
  });

  it("falls back to ./langgraph.json in the working directory", async () => {
    const cwd = process.cwd();
    process.chdir(dirname(FIXTURE_CONFIG));
    cleanup.push(() => process.chdir(cwd));
    const { client } = await start({});
    expect(await graphIds(client)).toEqual([
      "approval",
      "busy",
      "failing",
      "hang",
      "refine",
      "slow",
    ]);
  });

  it("serves only the built-in graphs when there is no file", async () => {
    const cwd = process.cwd();
    process.chdir(mkdtempSync(join(tmpdir(), "refinery-empty-")));
    cleanup.push(() => process.chdir(cwd));
    const { client } = await start({});
    expect(await graphIds(client)).toEqual(["refine"]);
  });
});
