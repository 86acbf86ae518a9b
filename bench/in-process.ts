// The in-process variant of bench:server: the same graph and model, run by LangGraph in this
// process on a SQLite saver on a temp file (WAL, as the server). bench:server runs it in a child
// process of its own (in-process-child.ts), so the bench's own SDK clients, sockets and heap do
// not slow it: inside the bench process its p50 rose from ~8.4 ms in round 1 to 10-11 ms after
// the first 16-concurrent phase (bench/RESULTS.md, issue 20).
import { randomUUID } from "node:crypto";
import { openSqliteCheckpointer } from "../core/checkpointer.ts";
import { installLightRunContext, uninstallLightRunContext } from "../core/run-context.ts";
import {
  createBenchGraph,
  createBenchModel,
  EXPECTED_MODEL_CALLS,
  EXPECTED_NODE_RUNS,
  RUN_OPTIONS,
  TASK,
} from "./server-graph.ts";

/**
 * `lightContext`: runs with Refinery's light run context installed (core/run-context.ts), as the
 * server's engine runs graphs; without it, the graph as LangGraph runs it on its own (the raw
 * graph of the targets). The two alternate in one process, so each run sets the mode it needs.
 */
export function createInProcess(dbPath: string, lightContext = false) {
  const opened = openSqliteCheckpointer(dbPath);
  const model = createBenchModel(0);
  const graph = createBenchGraph(model, opened.saver);
  let finished = 0;
  /** CPU of this process while in-process runs execute (they run one at a time). */
  const cpu = { runs: 0, micros: 0 };
  const run = async (): Promise<void> => {
    if (lightContext) installLightRunContext();
    else uninstallLightRunContext();
    const before = process.cpuUsage();
    const out = (await graph.invoke(
      { task: TASK },
      { configurable: { thread_id: randomUUID(), ...RUN_OPTIONS } },
    )) as { stopReason?: string };
    const used = process.cpuUsage(before);
    cpu.runs++;
    cpu.micros += used.user + used.system;
    if (out.stopReason !== "max_iterations") throw new Error(`in-process: ${out.stopReason}`);
    finished++;
  };
  const checkShape = async () => {
    const calls = model.calls;
    const nodes: string[] = [];
    const config = { configurable: { thread_id: randomUUID(), ...RUN_OPTIONS } };
    for await (const chunk of await graph.stream(
      { task: TASK },
      { ...config, streamMode: "updates" },
    )) {
      nodes.push(...Object.keys(chunk as object));
    }
    finished++;
    if (nodes.length !== EXPECTED_NODE_RUNS || model.calls - calls !== EXPECTED_MODEL_CALLS) {
      throw new Error(`in-process: ${nodes.length} node runs, ${model.calls - calls} model calls`);
    }
  };
  /** CPU ms per run since the last call. */
  const takeCpuMsPerRun = () => {
    const ms = cpu.micros / 1000 / cpu.runs;
    cpu.runs = 0;
    cpu.micros = 0;
    return ms;
  };
  return {
    run,
    checkShape,
    takeCpuMsPerRun,
    finished: () => finished,
    close: () => opened.close(),
  };
}
