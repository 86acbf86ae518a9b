// The `transform` node kind: sets state fields from expressions over the scope, e.g.
// `{set: {answer: 'trim(draft.text)', vars.subject: '"Re: " + task'}}`. Every expression reads
// the state as it was before the node ran (the assignments are simultaneous).
import type { RunnableConfig } from "@langchain/core/runnables";
import { z } from "zod";
import { RefineryError } from "../../core/errors.ts";
import type { SettingsResolver } from "../../core/settings.ts";
import type { Feedback } from "../../core/state.ts";
import {
  BLOCKED_PROPERTIES,
  compileExpression,
  ExpressionError,
  type Value,
} from "./expression.ts";
import { buildScope, SCOPE_SHAPE } from "./scope.ts";
import type { DeclarativeStateType, DeclarativeUpdate } from "./state.ts";

/** Fields a transform may set: text fields of the state, a feedback note, or any `vars.<name>`. */
export const TRANSFORM_FIELD = /^(task|context|answer|feedback|vars\.[A-Za-z_][A-Za-z0-9_]{0,63})$/;

export const TransformOptionsSchema = z
  .object({
    set: z
      .record(
        z
          .string()
          .regex(
            TRANSFORM_FIELD,
            "a transform sets task, context, answer, feedback or vars.<name>",
          ),
        z.string({ error: "expected an expression (a string)" }),
      )
      .refine((set) => Object.keys(set).length > 0, "set needs at least one field")
      .superRefine((set, ctx) => {
        for (const field of Object.keys(set)) {
          if (field.startsWith("vars.") && BLOCKED_PROPERTIES.has(field.slice(5)))
            ctx.addIssue({
              code: "custom",
              path: [field],
              message: `${field} is reserved (it would reach the object prototype); use another name`,
            });
        }
      }),
  })
  .strict();
export type TransformOptions = z.infer<typeof TransformOptionsSchema>;

/** Compiles every expression once, so a typo is a compile error at `nodes.<name>.set.<field>`. */
export function validateTransform(options: TransformOptions, path: string): void {
  for (const [field, source] of Object.entries(options.set)) {
    try {
      compileExpression(source, SCOPE_SHAPE);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      throw expressionError(err, source, `${path}.set.${field}`);
    }
  }
}

export function expressionError(err: ExpressionError, source: string, field: string) {
  const at = err.position === undefined ? "" : ` at character ${err.position}`;
  return new RefineryError(
    "invalid_config",
    `invalid expression ${JSON.stringify(source)}${at}: ${err.message}`,
    {
      field,
      fix: "see docs/declarative-graphs.md for the expression language and the names of the scope",
    },
  );
}

const text = (v: Value): string =>
  v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);

export function createTransformNode(options: TransformOptions, settings: SettingsResolver) {
  const assignments = Object.entries(options.set).map(
    ([field, source]) => [field, compileExpression(source, SCOPE_SHAPE)] as const,
  );
  return function transform(
    state: DeclarativeStateType,
    config: RunnableConfig,
  ): DeclarativeUpdate {
    const scope = buildScope(state, settings(config, state.options).limits);
    const update: DeclarativeUpdate = {};
    // No prototype: a name can never reach Object.prototype (the schema refuses them too).
    const vars: Record<string, Value> = Object.create(null) as Record<string, Value>;
    for (const [field, expr] of assignments) {
      const value = expr.evaluate(scope);
      if (field.startsWith("vars.")) vars[field.slice(5)] = value;
      else if (field === "answer") update.answer = value === null ? null : text(value);
      else if (field === "feedback") {
        const note: Feedback = {
          text: text(value),
          source: "system",
          at: new Date().toISOString(),
        };
        if (note.text.trim() !== "") update.feedback = note;
      } else update[field as "task" | "context"] = text(value);
    }
    if (Object.keys(vars).length) update.vars = { ...vars };
    return update;
  };
}
