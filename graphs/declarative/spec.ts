// The shape of a graph spec document (JSON or YAML) as zod schemas. Structure only: what the
// names mean (kinds, targets, expressions, reachability, cycles) is checked by compile.ts,
// which reports every problem at its exact path (`edges[2].when[0].if`).
import { z } from "zod";

/** The target that ends the run. */
export const END_TARGET = "END";

export const GRAPH_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
export const NODE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

const Target = z
  .string({ error: 'expected a node name or "END"' })
  .min(1, 'expected a node name or "END"');

export const ConditionSchema = z
  .object({
    if: z.string({ error: "expected a condition, e.g. verdicts.allHardPass" }),
    to: Target,
  })
  .strict();

export const EdgeSpecSchema = z
  .object({
    from: z.string({ error: "expected the name of the node this edge leaves" }),
    to: Target.optional().describe("Unconditional target."),
    when: z
      .array(ConditionSchema)
      .min(1, "when needs at least one {if, to}")
      .optional()
      .describe("Conditions tried in order; the first that holds picks the target."),
    else: Target.optional().describe('Target when no condition holds (default "END").'),
  })
  .strict();
export type EdgeSpec = z.infer<typeof EdgeSpecSchema>;

/** A node: its kind plus the kind's own fields (checked against the kind's schema). */
export const NodeSpecSchema = z
  .object({
    kind: z.string({ error: "every node needs a kind" }).min(1, "every node needs a kind"),
    description: z.string().optional(),
    options: z
      .unknown()
      .optional()
      .describe("Refine options for this node only (merged over the graph's options)."),
  })
  .loose();
export type NodeSpec = z.infer<typeof NodeSpecSchema>;

export const GraphSpecSchema = z
  .object({
    id: z
      .string({ error: "id is required: the graph id runs and assistants use" })
      .regex(
        GRAPH_ID_PATTERN,
        "id must start with a letter and contain only letters, digits, _ . - (at most 64)",
      ),
    description: z.string().max(2_000).optional(),
    options: z
      .unknown()
      .optional()
      .describe(
        "Refine options every node starts from: limits, verifiers, models, prompts, strategy.",
      ),
    start: z.string({ error: "start is required: the name of the first node" }),
    nodes: z
      .record(z.string(), NodeSpecSchema)
      .refine((nodes) => Object.keys(nodes).length > 0, "a graph needs at least one node"),
    edges: z.array(EdgeSpecSchema, { error: "edges must be a list of {from, to} or {from, when}" }),
  })
  .strict();
export type GraphSpec = z.infer<typeof GraphSpecSchema>;
