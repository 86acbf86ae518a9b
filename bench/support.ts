// Shared bench helpers: a zero-latency chat model, the machine description printed with every
// result, order statistics, and a timing loop that interleaves variants in alternating blocks.
import { cpus, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import type { RefineryCallOptions } from "../core/models/types.ts";

// ---------------------------------------------------------------------------------------------
// Model

/** The role a call plays (`refineryRole`, which callModel sets and the bare graph passes too). */
export type BenchReply = (role: string, messages: BaseMessage[]) => string;

/**
 * A chat model that answers at once with text chosen by `reply` and fixed usage_metadata, so a
 * bench measures the graph around the model and nothing else. No I/O, no timers.
 */
export class BenchChatModel extends BaseChatModel<RefineryCallOptions> {
  calls = 0;

  constructor(
    private readonly reply: BenchReply,
    private readonly usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15 },
  ) {
    super({});
  }

  _llmType(): string {
    return "bench";
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    this.calls += 1;
    const text = this.reply(options.refineryRole ?? "generate", messages);
    const message = new AIMessage({ content: text, usage_metadata: { ...this.usage } });
    return { generations: [{ text, message }] };
  }
}

// ---------------------------------------------------------------------------------------------
// Machine

export interface MachineDescription {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  platform: string;
  date: string;
}

/**
 * CPU model as /proc/cpuinfo names it, with family/model/MHz since virtual machines often name
 * only the brand (os.cpus() as a fallback off Linux).
 */
export function describeMachine(now = new Date()): MachineDescription {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const field = (name: string) =>
      new RegExp(`^${name}\\s*:\\s*(.+)$`, "m").exec(info)?.[1]?.trim();
    const model = field("model name");
    const family = field("cpu family");
    const number = field("model");
    const mhz = field("cpu MHz");
    const details = [
      family && number ? `family ${family} model ${number}` : undefined,
      mhz ? `${Math.round(Number(mhz))} MHz` : undefined,
    ].filter(Boolean);
    if (model) cpu = details.length ? `${model} (${details.join(", ")})` : model;
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cpu,
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    date: now.toISOString().slice(0, 10),
  };
}

export function formatMachine(m: MachineDescription): string {
  return `${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, ${m.platform}, ${m.date}`;
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** The p-th percentile (0..100) by linear interpolation between closest ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

// ---------------------------------------------------------------------------------------------
// Timing

export interface Variant {
  name: string;
  /** One complete run; `i` is unique per variant for the whole process (thread ids). */
  run(i: number): Promise<void>;
  /** One run that times itself (in another process): its wall-clock ms, used instead of run's. */
  timed?(i: number): Promise<number>;
}

export interface InterleaveOptions {
  runs: number;
  warmup: number;
  blockSize: number;
}

export interface VariantTiming {
  name: string;
  runs: number;
  totalMs: number;
  msPerRun: number;
  /** Per-run wall-clock times, for percentiles. */
  samples: number[];
  /** Wall-clock time of each timed block, in run order: block i of every variant ran side by side. */
  blockMs: number[];
  /**
   * CPU time (user + system, all threads of the process) per run. Less sensitive than wall
   * time to other tenants of a shared machine, since time spent descheduled is not counted.
   */
  cpuMsPerRun: number;
}

/**
 * The median over block cycles of `a`'s block time over `b`'s: each pair ran back to back, so
 * a slow phase of the machine mostly cancels out. Both must come from one runInterleaved call.
 */
export function pairedRatio(a: VariantTiming, b: VariantTiming): number {
  const n = Math.min(a.blockMs.length, b.blockMs.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) ratios.push((a.blockMs[i] as number) / (b.blockMs[i] as number));
  return median(ratios);
}

/**
 * Runs every variant `runs` times, `blockSize` runs at a time, rotating which variant goes
 * first in each block cycle so that slow phases of a shared machine hit them alike. A warm-up
 * of `warmup` runs per variant (also interleaved) is not timed.
 */
export async function runInterleaved(
  variants: readonly Variant[],
  { runs, warmup, blockSize }: InterleaveOptions,
  counters: Map<string, number> = new Map(),
): Promise<VariantTiming[]> {
  const next = (v: Variant) => {
    const i = counters.get(v.name) ?? 0;
    counters.set(v.name, i + 1);
    return i;
  };
  for (let done = 0; done < warmup; done += blockSize) {
    for (const v of variants) {
      for (let k = 0; k < Math.min(blockSize, warmup - done); k++) await v.run(next(v));
    }
  }
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const blocks = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const cpu = new Map<string, number>(variants.map((v) => [v.name, 0]));
  for (let done = 0, cycle = 0; done < runs; done += blockSize, cycle++) {
    const n = Math.min(blockSize, runs - done);
    for (let j = 0; j < variants.length; j++) {
      const v = variants[(j + cycle) % variants.length] as Variant;
      const out = samples.get(v.name) as number[];
      const cpuStart = process.cpuUsage();
      const blockStart = performance.now();
      for (let k = 0; k < n; k++) {
        const i = next(v);
        const started = performance.now();
        if (v.timed) out.push(await v.timed(i));
        else {
          await v.run(i);
          out.push(performance.now() - started);
        }
      }
      blocks.get(v.name)?.push(performance.now() - blockStart);
      const used = process.cpuUsage(cpuStart);
      cpu.set(v.name, (cpu.get(v.name) ?? 0) + (used.user + used.system) / 1000);
    }
  }
  return variants.map((v) => {
    const s = samples.get(v.name) as number[];
    const totalMs = s.reduce((a, b) => a + b, 0);
    return {
      name: v.name,
      runs: s.length,
      totalMs,
      msPerRun: totalMs / s.length,
      samples: s,
      blockMs: blocks.get(v.name) ?? [],
      cpuMsPerRun: (cpu.get(v.name) ?? 0) / s.length,
    };
  });
}

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx ? sxy / sxx : 0;
}
