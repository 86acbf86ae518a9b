// Request bodies of the Store API (/store/*), LangGraph's shapes: namespaces are arrays of labels
// (a GET joins them with "."), ttl is in minutes, limit/offset page. Unknown fields (and query
// parameters) are dropped, as LangGraph's server does (npm run diff:langgraph).
import { z } from "zod";

const Label = z
  .string({ error: "a namespace label must be a string" })
  .min(1, "a namespace label must not be empty")
  .max(256, "a namespace label must be at most 256 characters")
  .refine((l) => !l.includes("."), "a namespace label cannot contain a period (.)")
  .refine((l) => !l.includes(":"), "a namespace label cannot contain a colon (:)")
  .refine((l) => !l.includes("\0"), "a namespace label cannot contain a NUL character");

const Labels = z.array(Label).max(32, "a namespace has at most 32 labels");
/** put/get/delete: at least one label. */
export const StoreNamespace = Labels.min(1, 'namespace needs at least one label, e.g. ["users"]');

const Key = z
  .string({ error: "key is required: the item's key within its namespace" })
  .min(1, "key must not be empty")
  .max(1024, "key must be at most 1024 characters");

const Ttl = z
  .number({ error: "ttl must be a number of minutes (or null: never expires)" })
  .positive("ttl must be a positive number of minutes (or null: never expires)")
  .max(5_256_000, "ttl must be at most 10 years (5256000 minutes)");

export const StorePutItem = z
  .object({
    namespace: StoreNamespace,
    key: Key,
    value: z.record(z.string(), z.unknown(), { error: "value must be a JSON object" }),
    index: z.union([z.literal(false), z.array(z.string())]).nullish(),
    ttl: Ttl.nullish(),
  })
  .strip();

export const StoreDeleteItem = z.object({ namespace: StoreNamespace, key: Key }).strip();

const Flag = z.enum(["true", "false"], { error: "must be true or false" });

export const StoreGetItemQuery = z
  .object({
    namespace: z.string({
      error: "namespace is required: the labels joined by '.', e.g. users.alice",
    }),
    key: Key,
    refresh_ttl: Flag.optional(),
  })
  .strip();

export const StoreSearchItems = z
  .object({
    namespace_prefix: Labels.nullish(),
    filter: z.record(z.string(), z.unknown(), { error: "filter must be an object" }).nullish(),
    limit: z.number().int().min(1).max(1000).nullish(),
    offset: z.number().int().min(0).nullish(),
    query: z.string().max(10_000).nullish(),
    refresh_ttl: z.boolean().nullish(),
  })
  .strip();

export const StoreListNamespaces = z
  .object({
    prefix: Labels.nullish(),
    suffix: Labels.nullish(),
    max_depth: z.number().int().min(1).max(32).nullish(),
    limit: z.number().int().min(1).max(1000).nullish(),
    offset: z.number().int().min(0).nullish(),
  })
  .strip();
