// `refinery keys`: makes API keys for REFINERY_API_KEYS. `new` prints a fresh key once (for the
// person or service that will use it) and the entry to add to the keys file, which holds only
// the key's SHA-256; `hash` prints the SHA-256 of an existing key.
import { parseFlags } from "./args.ts";
import { hashKey, newKey, ROLES, type Role } from "../core/api-keys.ts";
import { RefineryError } from "../core/errors.ts";
import type { CliIO } from "./main.ts";

export const KEYS_HELP = `refinery keys new --identity NAME --tenant NAME --role ROLE [--json]
refinery keys hash KEY

  new    a new random key, printed once, and its entry for the REFINERY_API_KEYS file
         (only the key's SHA-256 is stored there)
  hash   the SHA-256 of an existing key, for key_sha256

      --identity NAME  who uses the key (a person or a service)
      --tenant NAME    the tenant whose data it reaches
      --role ROLE      ${ROLES.join(" | ")}
      --json           print {"key", "entry"} as JSON
`;

export async function keysCommand(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "--help" || sub === "-h") {
    io.stdout.write(KEYS_HELP);
    return sub ? 0 : 2;
  }
  if (sub === "hash") {
    if (rest.length !== 1 || !rest[0]) {
      throw new RefineryError("invalid_input", "expected one KEY", {
        field: "KEY",
        fix: "refinery keys hash <key>",
      });
    }
    io.stdout.write(`${hashKey(rest[0])}\n`);
    return 0;
  }
  if (sub !== "new") {
    throw new RefineryError("invalid_input", `unknown keys command "${sub}"`, {
      fix: "use refinery keys new or refinery keys hash (see refinery keys --help)",
    });
  }
  const { values, positionals } = parseFlags(
    rest,
    {
      identity: { type: "string" },
      tenant: { type: "string" },
      role: { type: "string" },
      json: { type: "boolean" },
    },
    "keys",
  );
  if (positionals.length > 0)
    throw new RefineryError("invalid_input", `unexpected argument "${positionals[0]}"`, {
      fix: "refinery keys new --identity alice --tenant acme --role member",
    });
  for (const field of ["identity", "tenant", "role"] as const) {
    if (!values[field]?.trim()) {
      throw new RefineryError("invalid_input", `--${field} is required`, {
        field: `--${field}`,
        fix: "refinery keys new --identity alice --tenant acme --role member",
      });
    }
  }
  if (!(ROLES as readonly string[]).includes(values.role!)) {
    throw new RefineryError("invalid_input", `unknown role "${values.role}"`, {
      field: "--role",
      fix: `use one of ${ROLES.join(", ")}`,
    });
  }
  const made = newKey({
    identity: values.identity!.trim(),
    tenant: values.tenant!.trim(),
    role: values.role as Role,
  });
  if (values.json) {
    io.stdout.write(`${JSON.stringify(made)}\n`);
    return 0;
  }
  io.stdout.write(
    `key:   ${made.key}\n` +
      `       (shown once: give it to ${made.entry.identity}; the server keeps only its hash)\n` +
      `entry: ${JSON.stringify(made.entry)}\n` +
      `       (add it to the list in your REFINERY_API_KEYS file)\n`,
  );
  return 0;
}
