// The reviewed list of intended differences between Refinery and the LangGraph server
// (npm run diff:langgraph). The harness fails on every difference no entry here matches. An
// entry names the route (exact, or "*"), optionally the case, the difference path (a regular
// expression over `<step>.<status|headers|body|events|result|requests>…`), its kind, a value
// condition, and why it is intended. `gap: true` marks a difference that is known and not fixed
// yet: listed so the harness passes, counted apart in its table and in README.
import type { Difference } from "./normalize.ts";

export interface Intended {
  route: string;
  case?: RegExp;
  path: RegExp;
  kind?: "missing" | "extra" | "value";
  /** Narrows the entry to differences with these values (e.g. ours 422 where the reference 400s). */
  when?: (d: Difference) => boolean;
  /**
   * A known difference not fixed yet (not a choice): listed so the harness passes, reported as
   * a gap in the table and in README.
   */
  gap?: boolean;
  reason: string;
}

/** A status difference: ours `a`, the reference `b` (`*` for any). */
const statuses =
  (ours: number | "*", ref: number | "*") =>
  (d: Difference): boolean => {
    const o = (d.ours as { status?: number } | undefined)?.status;
    const r = (d.ref as { status?: number } | undefined)?.status;
    return (ours === "*" || o === ours) && (ref === "*" || r === ref);
  };

const STATUS = /(^|\.)status$/;

export const INTENDED: Intended[] = [
  // ---- What Refinery is
  {
    route: "GET /info",
    path: /^info\.body\.(version|name|graphs)$/,
    reason:
      "version is Refinery's own; name and graphs are Refinery's extra fields (the reference reports its langgraph-api version)",
  },
  {
    route: "GET /ok",
    path: /^ok\.body\.(database|redis)$/,
    kind: "extra",
    reason:
      "Refinery's /ok also reports its database (and Redis when configured), so a load balancer or operator sees which dependency is down; the reference answers {ok: true} alone",
  },
  {
    route: "GET /info",
    path: /^info\.body\.flags\.crons$/,
    kind: "value",
    reason:
      "Refinery-only: Refinery has crons (POST /runs/crons, scheduled by its own scheduler) and says so; the LangGraph JS server has no crons (shapes follow LangGraph Python's)",
  },
  {
    route: "GET /info",
    path: /^info\.body\.flags\.langsmith_tracing_replicas$/,
    reason: "Refinery sends no traces to LangSmith",
  },
  {
    route: "*",
    path: /(^|\.)(langgraph_api_url|langgraph_host|langgraph_plan)$/,
    kind: "missing",
    reason:
      "LangGraph Platform deployment descriptors (API URL, host, plan) in run, checkpoint and message metadata: Refinery is not a Platform deployment and reports none",
  },
  {
    route: "*",
    path: /(^|\.)user-agent$|\.config\.configurable$/,
    kind: "missing",
    reason:
      "the reference copies request headers (user-agent) into each run's configurable, its thread's config and every checkpoint; Refinery copies no request headers into runs (they would be stored and shown to every reader of the thread)",
  },

  // ---- Errors: Refinery's error contract
  {
    route: "*",
    path: STATUS,
    when: statuses(422, 400),
    reason:
      "an invalid body is a 422 naming the field and the fix (Refinery's error contract); the reference answers 400 with zod issues",
  },
  {
    route: "*",
    path: STATUS,
    when: statuses(200, 400),
    reason:
      "null is accepted for every optional field (the Python SDK sends None for options left unset, and an empty PATCH changes nothing); the reference refuses some",
  },
  {
    route: "POST /threads/{thread_id}/runs/wait",
    case: /every optional null/,
    path: /^state\./,
    reason: "follows from the run above: the reference refused it, so its thread has no state",
  },
  {
    route: "POST /assistants",
    case: /unknown graph/,
    path: STATUS,
    when: statuses(422, 200),
    reason:
      "an assistant of a graph the server does not serve could never run: refused when it is created (422 naming graph_id); the reference stores it",
  },
  {
    route: "*",
    path: STATUS,
    when: statuses(404, 200),
    reason:
      "a checkpoint id the thread does not have, or a run that does not exist, is a 404; the reference answers an empty state as if the checkpoint existed, and a join of an unknown run with 200 and an __error__ value",
  },
  {
    route: "POST /threads/{thread_id}/runs/wait",
    case: /missing thread/,
    path: STATUS,
    when: statuses(404, 422),
    reason:
      "a run on a thread that does not exist is a 404 Thread not found (if_not_exists create creates it); the reference answers 422",
  },
  {
    route: "POST /threads/{thread_id}/copy",
    path: /^missing\.status$/,
    when: statuses(404, 409),
    reason: "copying a thread that does not exist is a 404 Thread not found, as everywhere here",
  },
  {
    route: "POST /threads/{thread_id}/state",
    path: STATUS,
    when: statuses(422, 500),
    reason:
      "as_node naming no node of the graph is a 422 naming as_node; the reference fails with a 500",
  },
  {
    route: "*",
    path: /\.body\.__error__\.(error|message)$/,
    kind: "value",
    reason:
      'a failed run\'s error keeps its name and message (EmptyInputError, "Received no input…"); the reference answers error "Error" with the whole error JSON-encoded again as its message',
  },
  {
    route: "*",
    path: /\.headers\.content-type$/,
    when: (d) => d.ours === "application/json" && d.ref === "text/plain",
    reason:
      "/wait answers are JSON and say so; the reference streams them as text/plain (the SDK parses either)",
  },

  // ---- Safety
  {
    route: "POST /threads/search",
    case: /CORS/,
    path: /\.headers\.access-control-(allow-origin|expose-headers)$/,
    reason:
      "CORS answers only the origins REFINERY_CORS_ORIGINS lists (the reference: any origin, *), and also exposes Location and Retry-After",
  },
  {
    route: "*",
    path: STATUS,
    when: statuses(409, 200),
    case: /resume a thread that is not interrupted|input and command/,
    reason:
      "command.resume on a thread with nothing to resume is a 409: two reviewers answering the same interrupt must not both win (test/server/races.test.ts); the reference runs the graph again with nothing to resume",
  },
  {
    route: "POST /threads/{thread_id}/runs/wait",
    case: /input and command/,
    path: /^state\./,
    reason: "follows from the refused resume above",
  },
  {
    route: "POST /threads/{thread_id}/runs/stream",
    case: /resume a thread that is not interrupted/,
    path: /./,
    reason: "follows from the refused resume above",
  },

  // ---- Reference bugs
  {
    route: "*",
    case: /limit and offset/,
    path: /\.headers\.x-pagination-total$/,
    reason:
      "the reference adds the offset to X-Pagination-Total; Refinery sends the number of matches",
  },
  {
    route: "POST /threads/search",
    case: /^values$/,
    path: /^search\.(headers\.x-pagination-total|body\[\d+\])$/,
    reason: "the reference's values filter also matches a thread that has no values",
  },
  {
    route: "POST /assistants/search",
    case: /sort asc/,
    path: /^search\.body\[\d+\]\.(graph_id|name)$/,
    reason: "the reference ignores sort_by graph_id; Refinery sorts by it",
  },
  {
    route: "POST /assistants/search",
    case: /limit and offset/,
    path: /^search\.body\[\d+\]\.(graph_id|name)$/,
    reason:
      "system assistants are created in the same millisecond: their order is unspecified on both servers",
  },
  {
    route: "POST /threads/{thread_id}/runs/{run_id}/cancel",
    case: /rollback/,
    path: /^(get\.status|thread\.body\.(status|values|interrupts))$/,
    reason:
      "a rollback deletes the run and its checkpoints, as the protocol documents it (the thread is idle again); the in-memory reference keeps the run and marks the thread error",
  },

  // ---- Refinery's extra fields
  {
    route: "*",
    path: /\.(body|result)(\[\d+\])?\.(attempt|error)$/,
    kind: "extra",
    when: (d) => d.path.includes("body") || d.path.includes("result"),
    reason:
      "runs carry their attempt (a run re-queued after a crash is attempt 2) and their error; extra fields",
  },
  {
    route: "*",
    path: /\.kwargs\.(checkpoint_before|on_disconnect)$/,
    kind: "extra",
    reason:
      "a run's kwargs keep what Refinery needs to execute it: the checkpoint it started from (rollback, crash recovery) and its on_disconnect; extra fields",
  },
  {
    route: "POST /assistants/{assistant_id}/versions",
    path: /\.updated_at$/,
    kind: "extra",
    reason: "assistant versions keep updated_at; an extra field",
  },
  {
    route: "*",
    path: /\.events\[\d+\]\.data\.(config|parentConfig|tasks)$|\.payload\.parent_config$/,
    kind: "extra",
    reason:
      "checkpoints and debug events carry the checkpoint's config, parent and tasks as LangGraph emits them; the reference trims them",
  },
  {
    route: "POST /threads/{thread_id}/copy",
    path: /^copy\.body\.(values|interrupts)$/,
    kind: "extra",
    reason:
      "the copy is answered with the state it was given; the reference answers it before copying",
  },
  {
    route: "*",
    path: /\.body\.metadata$/,
    kind: "extra",
    when: (d) => JSON.stringify(d.ours) === "{}",
    reason: "the state of a thread that never ran has metadata {} (the reference: none)",
  },

  {
    route: "POST /threads/{thread_id}/runs/{run_id}/cancel",
    case: /action interrupt/,
    path: /^thread\.body\.(values|interrupts)$/,
    kind: "extra",
    reason:
      "every step is checkpointed before the next starts (durability sync), the input's too: a run cancelled in its first step leaves the thread its input; the reference had not written it yet",
  },
  {
    route: "*",
    case: /join stream|joinStream|join, get, list/,
    path: /^join ?[sS]tream\.(headers\.content-location|events\[\d+\]|result\[\d+\])$/,
    kind: "extra",
    reason:
      "joining the stream of a run that has ended replays its events (kept up to 60 s, REFINERY_STREAM_RETAIN_RUNS); the reference answers an empty stream",
  },
  {
    route: "POST /threads/{thread_id}/runs/stream",
    case: /resumable|useStream/,
    path: /\.headers\.location$|^stream\.requests\[1\]$/,
    kind: "extra",
    reason:
      "a stream the client asks to be resumable (stream_resumable) carries a Location, where the SDK reconnects with Last-Event-ID if the connection drops; the SDK then checks the run once after the stream ends. The reference sends none, so the SDK cannot reconnect to it",
  },

  {
    route: "POST /threads/{thread_id}/runs",
    case: /multitask interrupt/,
    path: /^join first\.body\.|^state\.body\.metadata\.step$/,
    reason:
      "joining a run cancelled by multitask interrupt answers the state it was cancelled in, and its finished steps stay checkpointed, so the next run's steps count on from them; the reference answers the thread's state after the run that replaced it",
  },
  {
    route: "POST /threads/{thread_id}/runs",
    case: /multitask rollback/,
    path: /^state\.body\.metadata\.step$/,
    reason:
      "multitask rollback deletes the replaced run's checkpoints, so the next run's steps count from the thread's state before it; the in-memory reference keeps them",
  },

  {
    route: "POST /threads/{thread_id}/state",
    case: /^checkpoint$/,
    path: /^state after\.body\.metadata\.checkpoint_map$/,
    kind: "missing",
    reason:
      "an update addressed to a checkpoint: the reference copies that checkpoint's checkpoint_map (null) into the new checkpoint's metadata",
  },

  // ---- Store API
  {
    route: "*",
    path: /(^|\.)error\.status$/,
    when: (d) => d.ours === 422 && d.ref === 400,
    reason:
      "an invalid body sent through the SDK (an empty namespace) is a 422 naming the field and the fix (Refinery's error contract); the reference answers 400",
  },
  ...["PUT /store/items", "GET /store/items"].map((route): Intended => ({
    route,
    path: /^get\.status$/,
    when: statuses(422, 500),
    reason:
      "a GET /store/items without a namespace (or with an empty one) is a 422 naming query.namespace; the reference fails with a 500 (a reference bug)",
  })),
  {
    route: "PUT /store/items",
    case: /^ttl a string$/,
    path: /^(put\.status|get\.body)$/,
    reason:
      "a ttl that is not a number is refused with a 422 naming ttl (a misspelt expiry must not be guessed: the item could outlive what its writer asked); the reference stores the item",
  },
  {
    route: "GET /store/items",
    case: /^refresh_ttl not a flag$/,
    path: STATUS,
    when: statuses(422, 200),
    reason:
      "refresh_ttl other than true/false is refused with a 422 naming query.refresh_ttl; the reference answers the item",
  },

  // ---- Bulk and dev operations
  {
    route: "POST /internal/truncate",
    case: /^unknown flag$/,
    path: STATUS,
    when: statuses(422, 200),
    reason:
      "a flag truncate does not know is refused with a 422 naming it: a misspelt flag of a route that deletes everything must not silently delete nothing (or less than asked); the reference ignores it",
  },
  ...["POST /runs/cancel", "POST /threads/prune"].map((route): Intended => ({
    route,
    path: /./,
    reason:
      "a Refinery-only route (the LangGraph Platform's bulk cancel and thread prune, which the reference, langgraph dev, does not serve: 404), and what follows from it",
  })),

  // ---- The harness's own graphs
  {
    route: "*",
    case: /^(empty|metadata|select|unknown field|nulls|limit and offset|threads and runs|runs|checkpointer|assistants|store|everything|no flags|unknown flag)$/,
    path: /^(search|assistants)\.body\[\d+\]\.(graph_id|name|metadata\.created_by)$/,
    kind: "value",
    reason:
      "a search without sort_by answers the first page (10) of the harness's 12 system assistants, newest first; the servers create them at start-up in a different order (the reference as each graph file finishes loading), so which 10 come first differs. Each assistant's fields are compared in the cases that name it",
  },
  {
    route: "*",
    case: /^(threads and runs|runs|checkpointer|store|everything|no flags|unknown flag)$/,
    path: /^assistants\.body\[\d+\]\.metadata\.created_by$/,
    reason:
      "follows from the entry above: a user assistant and a system one trade places in the page",
  },

  // ---- Schemas
  {
    route: "GET /assistants/{assistant_id}/schemas",
    path: /^schemas\.body\.(input|output|state)_schema\.definitions\./,
    reason:
      "messages (BaseMessage) are described by one compact definition of the fields a client sends (type, content, id, name, kwargs); the reference expands @langchain/core's class into some 20 definitions (30 KB per schema) whose top entry is a oneOf of RemoveMessage alone, an artefact of its vendored typescript-json-schema. The property itself ($ref, array of messages) is the same",
  },
  // ---- issue 17 (h4): supersteps, runtime context
  {
    route: "POST /threads",
    case: /supersteps/,
    path: /^create\.body\.interrupts$/,
    kind: "extra",
    reason:
      "a thread created with supersteps answers its values with its interrupts (empty), as every Refinery thread that has values does; the reference answers the values alone",
  },
  {
    route: "POST /runs/wait",
    case: /context refused by the schema/,
    path: STATUS,
    when: statuses(422, 200),
    reason:
      "a run context the graph's context schema refuses is a 422 naming context.<field> before any run exists; the reference creates the run, which fails at its first step",
  },
  // ---- thread protocol (issue 18)
  {
    route: "POST /threads/{thread_id}/commands",
    case: /invalid commands/,
    path: /^(run\.start without assistant|respond without interrupt_id)\.status$/,
    when: statuses(422, 200),
    reason:
      "Refinery's error contract: a command whose params are invalid is a 422 naming the field (params.assistant_id, params.interrupt_id); the reference answers 200 with a protocol error ({type: error}); the SDK throws on both",
  },
  {
    route: "POST /threads/{thread_id}/commands",
    case: /invalid commands/,
    path: /^(unknown method|respond while not interrupted)\.body\.(error|message)$/,
    reason:
      "on a thread whose runs this process did not start through the protocol the reference answers no_such_run for every command; Refinery reads the thread itself and names the problem: an unknown command, or no interrupt waiting for an answer",
  },
];
