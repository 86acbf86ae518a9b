// Start-up bench (issue 20): wall-clock time of `refinery --help`, of an offline `refinery run` to
// its answer, and of `npm start` to the first 200 from GET /ok on a fresh temporary database.
// Each command runs as a child process, the checkouts interleaved round by round, so a noisy
// machine loads them alike; the medians and the ratios to the first checkout are printed.
//
//   npm run bench:startup                            this checkout
//   npm run bench:startup -- --compare /work/main    another checkout first (e.g. before a change)
//   npm run bench:startup -- --repeats 7
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeMachine, formatMachine, median } from "./support.ts";

const { values } = parseArgs({
  options: {
    compare: { type: "string", multiple: true },
    repeats: { type: "string", default: "5" },
  },
});
const repeats = Math.max(1, Number(values.repeats));
const here = resolve(import.meta.dirname, "..");
const roots = [...(values.compare ?? []).map((p) => resolve(p)), here];

interface Measure {
  name: string;
  /** Milliseconds from spawn to done, for the checkout at root. */
  once(root: string, scratch: string): Promise<number>;
}

/** Runs a command to its exit; fails on a non-zero exit (a broken command is no measurement). */
function timeExit(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  return new Promise<number>((done, fail) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.resume();
    child.on("error", fail);
    child.on("exit", (code) => {
      const ms = performance.now() - start;
      if (code === 0) done(ms);
      else fail(new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${code}: ${err.trim()}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => done(port));
    });
  });
}

const childEnv = (scratch: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, REFINERY_DB: join(scratch, "refinery.db") };
  delete env.OPENAI_API_KEY;
  return env;
};

const measures: Measure[] = [
  {
    name: "refinery --help",
    once: (root, scratch) =>
      timeExit(process.execPath, [join(root, "cli/bin.mjs"), "--help"], root, childEnv(scratch)),
  },
  {
    name: 'refinery run "What is 2+2?" --expect-number 4 --offline',
    once: (root, scratch) =>
      timeExit(
        process.execPath,
        [join(root, "cli/bin.mjs"), "run", "What is 2+2?", "--expect-number", "4", "--offline"],
        root,
        childEnv(scratch),
      ),
  },
  {
    name: "npm start → first 200 from GET /ok",
    async once(root, scratch) {
      const port = await freePort();
      const start = performance.now();
      const child = spawn("npm", ["start", "--", "--port", String(port)], {
        cwd: root,
        env: childEnv(scratch),
        stdio: ["ignore", "ignore", "pipe"],
        detached: true,
      });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      let exited = false;
      child.on("exit", () => (exited = true));
      try {
        for (;;) {
          if (exited) throw new Error(`npm start (in ${root}) exited: ${err.trim()}`);
          if (performance.now() - start > 120_000) throw new Error("no 200 from /ok in 120 s");
          try {
            const res = await fetch(`http://127.0.0.1:${port}/ok`);
            await res.arrayBuffer();
            if (res.status === 200) return performance.now() - start;
          } catch {
            // not listening yet
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      } finally {
        if (!exited) {
          const gone = new Promise((r) => child.once("exit", r));
          process.kill(-child.pid!, "SIGKILL");
          await gone;
        }
      }
    },
  },
];

console.log(`Machine: ${formatMachine(describeMachine())}`);
console.log(
  `Load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
console.log(`Checkouts: ${roots.join(", ")}; ${repeats} repeats each, interleaved\n`);

const rows: string[][] = [];
for (const measure of measures) {
  const times = roots.map(() => [] as number[]);
  for (let i = 0; i < repeats; i++) {
    for (const [r, root] of roots.entries()) {
      // A fresh temporary database (and data directory) for every repeat.
      const scratch = mkdtempSync(join(tmpdir(), "refinery-startup-"));
      try {
        times[r]!.push(await measure.once(root, scratch));
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }
  }
  const medians = times.map((t) => median(t));
  for (const [r, root] of roots.entries()) {
    const ratio = r === 0 ? "" : ` (${(medians[r]! / medians[0]!).toFixed(2)}× the first)`;
    rows.push([
      measure.name,
      root,
      `${medians[r]!.toFixed(0)} ms${ratio}`,
      times[r]!.map((t) => t.toFixed(0)).join(" "),
    ]);
  }
  const last = rows.slice(-roots.length);
  for (const row of last) console.log(`${row[0]} | ${row[1]} | median ${row[2]} | ${row[3]}`);
}
console.log(
  `\nLoad average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
