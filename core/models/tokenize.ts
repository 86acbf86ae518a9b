// Counts tokens with a real tokenizer (tiktoken's cl100k_base, the GPT-4 / GPT-3.5 encoding) for
// replies whose endpoint reported no usage, so `tokenBudget` still holds. Endpoints that omit
// usage are mostly self-hosted models with tokenizers of their own, so the count is an estimate
// either way; cl100k_base builds in about 0.3 s where o200k_base takes about 2 s. The rank file
// (1 MB of JavaScript) is loaded on the first count, never at start-up.
import type { BaseMessage } from "@langchain/core/messages";

interface Encoder {
  encode(
    text: string,
    allowedSpecial?: "all" | string[],
    disallowedSpecial?: "all" | string[],
  ): number[];
}

let loading: Promise<Encoder> | undefined;

/** The encoder, loaded once per process (per worker thread) on first use. */
export function loadTokenizer(): Promise<Encoder> {
  loading ??= (async () => {
    const [{ Tiktoken }, ranks] = await Promise.all([
      import("js-tiktoken/lite"),
      import("js-tiktoken/ranks/cl100k_base"),
    ]);
    return new Tiktoken(ranks.default);
  })();
  // A failed load (it should not happen) is tried again by the next count.
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/** The name of the encoding counts are made with, for the record in the state and docs. */
export const TOKENIZER = "cl100k_base";

/** Tokens of a text; special-token strings in it are counted as plain text. */
export async function countTokens(text: string): Promise<number> {
  if (text === "") return 0;
  const encoder = await loadTokenizer();
  return encoder.encode(text, [], []).length;
}

/**
 * Prompt tokens of chat messages as OpenAI's chat format bills them: each message's text plus
 * 3 tokens of framing per message (4 with a name), plus 3 that prime the reply.
 */
export async function countPromptTokens(
  messages: readonly BaseMessage[],
  textOf: (content: unknown) => string,
): Promise<number> {
  let total = 3;
  for (const message of messages) {
    total += 3 + (await countTokens(textOf(message.content)));
    if (message.name) total += 1 + (await countTokens(message.name));
  }
  return total;
}
