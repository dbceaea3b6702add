// The one polling wait, of this repository's tests and of kube-conveyor/testing: checks a condition until it holds or a deadline passes, naming what it waited for.

/**
 * Resolves once `check` returns true; rejects after `timeoutMs` with an error naming `what`.
 * Generous by default: a slow CI machine should make a test slower, not red.
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
