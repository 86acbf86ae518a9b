// A child process of bench:server that runs the in-process variants (in-process.ts) on request
// and times each run itself, so the parent's state and the message round trip stay out of the
// figure. Messages: { id, op: "run" | "checkShape" | "cpu" | "finished", variant: "raw" | "light" }
// answered { id, value } or { id, error }; "close" closes both files and exits.
import { join } from "node:path";
import { createInProcess } from "./in-process.ts";

const dir = process.argv[2];
if (!dir || !process.send) throw new Error("in-process-child.ts runs as a forked child: <dir>");
const send = process.send.bind(process);
const variants = {
  raw: createInProcess(join(dir, "in-process.db")),
  light: createInProcess(join(dir, "in-process-light.db"), true),
};

type Request = { id: number; op: string; variant: keyof typeof variants };

process.on("message", (m: Request) => {
  void (async () => {
    if (m.op === "close") {
      variants.raw.close();
      variants.light.close();
      process.exit(0);
    }
    const v = variants[m.variant];
    try {
      let value: number | undefined;
      if (m.op === "run") {
        const started = performance.now();
        await v.run();
        value = performance.now() - started;
      } else if (m.op === "checkShape") await v.checkShape();
      else if (m.op === "cpu") value = v.takeCpuMsPerRun();
      else if (m.op === "finished") value = v.finished();
      else throw new Error(`unknown op ${m.op}`);
      send({ id: m.id, value });
    } catch (err) {
      send({ id: m.id, error: (err as Error).message });
    }
  })();
});
send({ id: 0, value: 0 });
