// Wires one Refinery process: model provider, settings resolver, checkpoint store and the
// compiled `refine` graph. The CLI and the server both start here.
import type { ProcessSettings, RefineOptions } from "../core/config.ts";
import {
  openMemoryCheckpointer,
  openSqliteCheckpointer,
  type OpenedCheckpointer,
} from "../core/checkpointer.ts";
import { createModelProvider, type ModelProvider } from "../core/models/provider.ts";
import { installLightRunContext } from "../core/run-context.ts";
import { createSettingsResolver, type SettingsResolver } from "../core/settings.ts";
import type { LessonSource } from "../nodes/generate.ts";
import type { FeedbackSource } from "../nodes/support.ts";
import { createRefineGraph } from "./refine.ts";

export interface EngineOptions {
  settings: ProcessSettings;
  /** Default refine options (e.g. from the config file). */
  defaults?: RefineOptions;
  /** Use an in-memory checkpointer instead of the SQLite file (tests). */
  memory?: boolean;
  /** An open checkpointer (the server's persistence backend); the engine does not close it. */
  checkpointer?: OpenedCheckpointer;
  /** Inject a provider (tests use scripted models). */
  provider?: ModelProvider;
  /** False when another connection in this process already checked the file (run threads). */
  checkIntegrity?: boolean;
  /** Store each run's config.metadata in its checkpoints' metadata, as the LangGraph server does. */
  runMetadata?: boolean;
  /** Live feedback source (the server's inbox). */
  inbox?: FeedbackSource;
  /** Lessons for generate's prompt (the lessons memory). */
  lessons?: LessonSource;
}

export interface Engine {
  graph: ReturnType<typeof createRefineGraph>;
  checkpointer: OpenedCheckpointer;
  provider: ModelProvider;
  resolve: SettingsResolver;
  close(): void;
}

export function openEngine(options: EngineOptions): Engine {
  // Graph calls carry their config without building an untraced LangSmith RunTree per call.
  installLightRunContext();
  const provider = options.provider ?? createModelProvider(options.settings);
  const resolve = createSettingsResolver({ provider, defaults: options.defaults });
  const checkpointer = options.checkpointer
    ? options.checkpointer
    : options.memory
      ? openMemoryCheckpointer()
      : openSqliteCheckpointer(options.settings.dbPath, {
          check: options.checkIntegrity,
          limits: options.settings.stateLimits,
          runMetadata: options.runMetadata,
        });
  const graph = createRefineGraph({
    settings: resolve,
    checkpointer: checkpointer.saver,
    inbox: options.inbox,
    lessons: options.lessons,
  });
  return { graph, checkpointer, provider, resolve, close: () => checkpointer.close() };
}
