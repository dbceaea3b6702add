// What every long-running per-controller command shares: the --controller/--concurrency flags as config overrides, and waiting for SIGTERM.
import { UsageError } from './command.ts';

/** `--controller` and `--concurrency` as config overrides, with a usage error for a bad concurrency. */
export function controllerOverrides(values: {
  controller?: string | undefined;
  concurrency?: string | undefined;
}): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  if (values.concurrency !== undefined) {
    if (!/^[1-9]\d*$/.test(values.concurrency))
      throw new UsageError(`--concurrency must be a positive integer, got "${values.concurrency}"`);
    overrides['worker.concurrency'] = Number(values.concurrency);
  }
  if (values.controller !== undefined) overrides.controller = values.controller;
  return overrides;
}

/** Resolves with the first SIGTERM or SIGINT; a second one ends the process the default way. */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}
