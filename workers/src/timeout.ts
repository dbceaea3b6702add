// Runs user code under a deadline: a timeout, a rejection or a synchronous throw all come back as a rejected promise, never a crash.
import { TimeoutError } from '@conveyor/shared';

/**
 * Resolves or rejects with `run`'s result, or rejects with TimeoutError after `ms` and aborts the
 * signal it handed to `run`. User code cannot be cancelled from outside; the signal lets it stop.
 */
export async function withTimeout<R>(what: string, ms: number, run: (signal: AbortSignal) => R | Promise<R>): Promise<R> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TimeoutError(`${what} did not finish within ${ms} ms`, ms);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    // Promise.resolve().then(...) turns a synchronous throw into a rejection too.
    return await Promise.race([Promise.resolve().then(() => run(controller.signal)), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
