// Entry point of `npm start`: the server (server/main.ts) from dist/ when the build is current,
// else from the TypeScript sources (scripts/launch.mjs).
import { launch } from "./launch.mjs";

await launch("server/main.ts");
