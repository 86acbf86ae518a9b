#!/usr/bin/env node
// Entry point of the `refinery` bin: runs cli/main.ts from the build in dist/ when it is current,
// else from the TypeScript sources through tsx (scripts/launch.mjs).
import { launch } from "../scripts/launch.mjs";

// A reader that stops early (`refinery export ... | head`) closes the pipe: stop quietly, as
// other command-line tools do, instead of dying on an unhandled EPIPE with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const { main } = await launch("cli/main.ts");
const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
process.exitCode = code;
