// Prometheus metrics: runs by status, run duration, queue depth, LLM tokens by node, run threads.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  runsFinished: Counter<"status">;
  runDuration: Histogram<"status">;
  queueDepth: Gauge;
  runsActive: Gauge;
  tokens: Counter<"node" | "kind">;
  httpRequests: Counter<"method" | "status">;
  runThreads: Gauge;
  runThreadExits: Counter;
  leaseReclaims: Counter;
  leasesLost: Counter;
  webhooksQueued: Gauge;
  webhookDeliveries: Counter<"result">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  return {
    registry,
    runsFinished: new Counter({
      name: "refinery_runs_finished_total",
      help: "Runs that ended, by final status.",
      labelNames: ["status"],
      registers: [registry],
    }),
    runDuration: new Histogram({
      name: "refinery_run_duration_seconds",
      help: "Wall time of runs from start to end, by final status.",
      labelNames: ["status"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "refinery_runs_pending",
      help: "Runs waiting for a worker.",
      registers: [registry],
    }),
    runsActive: new Gauge({
      name: "refinery_runs_running",
      help: "Runs executing in this process.",
      registers: [registry],
    }),
    tokens: new Counter({
      name: "refinery_llm_tokens_total",
      help: "LLM tokens spent, by node and kind (prompt|completion).",
      labelNames: ["node", "kind"],
      registers: [registry],
    }),
    runThreads: new Gauge({
      name: "refinery_run_threads",
      help: "Run threads alive (worker threads executing graphs; 0 when graphs run in the server thread).",
      registers: [registry],
    }),
    runThreadExits: new Counter({
      name: "refinery_run_thread_exits_total",
      help: "Run threads that stopped unexpectedly (each is replaced; its runs resume from their last checkpoint).",
      registers: [registry],
    }),
    leaseReclaims: new Counter({
      name: "refinery_run_lease_reclaims_total",
      help: "Runs this process took back from a worker that stopped heartbeating (their lease lapsed), to continue from their last checkpoint.",
      registers: [registry],
    }),
    leasesLost: new Counter({
      name: "refinery_run_leases_lost_total",
      help: "Runs this process stopped executing because its lease on them lapsed (another worker continues them).",
      registers: [registry],
    }),
    webhooksQueued: new Gauge({
      name: "refinery_webhooks_queued",
      help: "Run webhook calls in the database outbox, not delivered yet (due or waiting for a retry).",
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "refinery_webhook_deliveries_total",
      help: "Run webhook attempts made by this process, by result (delivered|retry|failed).",
      labelNames: ["result"],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: "refinery_http_requests_total",
      help: "HTTP requests by method and status.",
      labelNames: ["method", "status"],
      registers: [registry],
    }),
  };
}
