// Vitest setup file: after each test file, drops the Postgres schemas its servers used
// (test/support/test-backend.ts; nothing to do on SQLite). Registered first, so it runs after
// the file's own afterAll hooks have closed its servers.
import { afterAll } from "vitest";
import { dropTestSchemas } from "./test-backend.ts";

afterAll(dropTestSchemas);
