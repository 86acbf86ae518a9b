// Node kinds a spec can use: the built-in refinement nodes (generate, critique, verify, revise,
// approve), `transform`, and any kind registered from TypeScript with `registerNodeKind`.
// A kind is a zod schema for the node's own fields plus a factory from those fields to a node.
import type { RunnableConfig } from "@langchain/core/runnables";
import { z } from "zod";
import { ModelSpecSchema, type RefineOptions } from "../../core/config.ts";
import { RefineryError } from "../../core/errors.ts";
import type { ModelProvider } from "../../core/models/provider.ts";
import type { SettingsResolver } from "../../core/settings.ts";
import { createVerifiers } from "../../core/verifiers/index.ts";
import { createApproveNode } from "../../nodes/approve.ts";
import { createCritiqueNode } from "../../nodes/critique.ts";
import { createGenerateNode, type LessonSource } from "../../nodes/generate.ts";
import { createReviseNode } from "../../nodes/revise.ts";
import { createVerifyNode } from "../../nodes/verify.ts";
import type { DeclarativeStateType, DeclarativeUpdate } from "./state.ts";
import { TransformOptionsSchema, createTransformNode, validateTransform } from "./transform.ts";

export type DeclarativeNode = (
  state: DeclarativeStateType,
  config: RunnableConfig,
) => DeclarativeUpdate | Promise<DeclarativeUpdate>;

/** What a node factory gets besides its own options. */
export interface NodeKindDeps {
  /** The node's name in the spec. */
  name: string;
  /** Where the node sits in the spec, for error messages: `nodes.<name>`. */
  path: string;
  /**
   * The node's settings: the graph's options < the node's options (and the kind's shorthands)
   * < options stored with the run's input < the run's `configurable`.
   */
  settings: SettingsResolver;
  provider: ModelProvider;
  /** Lessons from the memory, for generate nodes. */
  lessons?: LessonSource;
}

export interface NodeKind<S extends z.ZodType = z.ZodType> {
  /** Validates the node's fields other than `kind`, `description` and `options`. */
  schema: S;
  create(options: z.output<S>, deps: NodeKindDeps): DeclarativeNode;
  /** Refine options the kind's shorthand fields stand for (e.g. `prompt` -> `prompts.generate`). */
  refineOptions?(options: z.output<S>): RefineOptions;
  /** Checks beyond the schema when the spec is compiled; throws RefineryError naming `path`. */
  validate?(options: z.output<S>, path: string): void;
  /**
   * True when a node of this kind can end the run by itself (it records a `stopReason`), so a
   * cycle through it has a way out.
   */
  canStop?: boolean;
  description?: string;
}

export interface NodeKindRegistry {
  register<S extends z.ZodType>(name: string, kind: NodeKind<S>): void;
  get(name: string): NodeKind | undefined;
  names(): string[];
}

export const BUILTIN_KIND_NAMES = [
  "generate",
  "critique",
  "verify",
  "revise",
  "approve",
  "transform",
] as const;
const KIND_NAME = /^[a-z][a-z0-9_]{0,63}$/;

const PromptSchema = z
  .object({ system: z.string().min(1).optional(), user: z.string().min(1).optional() })
  .strict()
  .describe("Prompt template override; placeholders {task}, {draft}, {critique}, …");

const ModelNodeSchema = z
  .object({ prompt: PromptSchema.optional(), model: ModelSpecSchema.optional() })
  .strict();
type ModelNodeOptions = z.infer<typeof ModelNodeSchema>;

const VerifyNodeSchema = z
  .object({
    verifiers: z.array(z.unknown()).optional().describe("Replaces the graph's verifiers."),
    model: ModelSpecSchema.optional().describe("Model of llm_judge verifiers."),
  })
  .strict();

/** A judge that is never called: building verifiers at compile time only checks their specs. */
const unusedJudge = async () => {
  throw new Error("not called at compile time");
};

export function validateVerifierSpecs(specs: unknown, path: string): void {
  createVerifiers((specs ?? []) as never, { judge: unusedJudge }, path);
}

function builtins(): Record<(typeof BUILTIN_KIND_NAMES)[number], NodeKind> {
  const generate: NodeKind<typeof ModelNodeSchema> = {
    description: "Writes the first draft (prompt, model).",
    schema: ModelNodeSchema,
    refineOptions: (o: ModelNodeOptions) => ({
      ...(o.prompt ? { prompts: { generate: o.prompt } } : {}),
      ...(o.model ? { models: { generate: o.model } } : {}),
    }),
    create: (_o, deps) => createGenerateNode({ settings: deps.settings, lessons: deps.lessons }),
  };
  const critique: NodeKind<typeof ModelNodeSchema> = {
    description: "Asks the critic model what is wrong with the newest draft (prompt, model).",
    schema: ModelNodeSchema,
    canStop: true,
    refineOptions: (o: ModelNodeOptions) => ({
      ...(o.prompt ? { prompts: { critique: o.prompt, critiqueTargeted: o.prompt } } : {}),
      ...(o.model ? { models: { critique: o.model } } : {}),
    }),
    create: (_o, deps) => createCritiqueNode({ settings: deps.settings }),
  };
  const revise: NodeKind<typeof ModelNodeSchema> = {
    description: "Rewrites the newest draft from the critique and failed checks (prompt, model).",
    schema: ModelNodeSchema,
    canStop: true,
    refineOptions: (o: ModelNodeOptions) => ({
      ...(o.prompt ? { prompts: { revise: o.prompt, reviseTargeted: o.prompt } } : {}),
      ...(o.model ? { models: { revise: o.model } } : {}),
    }),
    create: (_o, deps) => createReviseNode({ settings: deps.settings }),
  };
  const verify: NodeKind<typeof VerifyNodeSchema> = {
    description:
      "Runs verifiers on the newest draft, keeps the best so far, applies the stop policy (verifiers, model).",
    schema: VerifyNodeSchema,
    canStop: true,
    refineOptions: (o) => ({
      ...(o.verifiers ? { verifiers: o.verifiers } : {}),
      ...(o.model ? { models: { judge: o.model } } : {}),
    }),
    validate: (o, path) => {
      if (o.verifiers) validateVerifierSpecs(o.verifiers, `${path}.verifiers`);
    },
    create: (_o, deps) => createVerifyNode({ settings: deps.settings }),
  };
  const approve: NodeKind<z.ZodObject> = {
    description:
      "Pauses for a reviewer: approve (stopReason approved), reject (route revise), edit (route verify) or abort.",
    schema: z.object({}).strict(),
    canStop: true,
    create: (_o, deps) => createApproveNode({ settings: deps.settings }),
  };
  const transform: NodeKind<typeof TransformOptionsSchema> = {
    description: "Sets state fields from expressions: {set: {field: expression}}.",
    schema: TransformOptionsSchema,
    validate: validateTransform,
    create: (o, deps) => createTransformNode(o, deps.settings),
  };
  return {
    generate,
    critique,
    verify,
    revise,
    approve,
    transform,
  } as unknown as Record<(typeof BUILTIN_KIND_NAMES)[number], NodeKind>;
}

/** A registry holding the built-in kinds; `register` adds your own. */
export function createNodeKindRegistry(): NodeKindRegistry {
  const kinds = new Map<string, NodeKind>(Object.entries(builtins()));
  return {
    register(name, kind) {
      if (!KIND_NAME.test(name)) {
        throw new RefineryError("invalid_config", `invalid node kind name "${name}"`, {
          field: "kind",
          fix: "use lower-case letters, digits and _ (e.g. back_translate)",
        });
      }
      if ((BUILTIN_KIND_NAMES as readonly string[]).includes(name)) {
        throw new RefineryError("conflict", `"${name}" is a built-in node kind`, {
          field: "kind",
          fix: "give your kind another name",
        });
      }
      kinds.set(name, kind as unknown as NodeKind);
    },
    get: (name) => kinds.get(name),
    names: () => [...kinds.keys()],
  };
}

/** The process-wide kinds the server compiles specs with. */
export const defaultNodeKinds = createNodeKindRegistry();

/**
 * Makes a node kind available to every spec compiled with the default registry, e.g.
 * `registerNodeKind("back_translate", { schema, create })`. Registering a name again replaces it.
 */
export function registerNodeKind<S extends z.ZodType>(name: string, kind: NodeKind<S>): void {
  defaultNodeKinds.register(name, kind);
}
