// Small helpers the server tests share: polling with a deadline, and reading SDK failures.

/** Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 5_000,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The SDK error of a request that must fail: its HTTP status and the message it read. */
export async function failure(
  promise: Promise<unknown>,
): Promise<{ status: number; body: string }> {
  try {
    await promise;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (typeof status !== "number") throw err;
    return { status, body: (err as Error).message };
  }
  throw new Error("expected the request to fail");
}

/** The HTTP status of a request that must fail. */
export async function statusOf(promise: Promise<unknown>): Promise<number> {
  return (await failure(promise)).status;
}

/** The SDK types run outputs loosely; tests know each graph's state. */
export const valuesOf = async <T>(output: Promise<unknown>): Promise<T> => (await output) as T;
