// What every per-controller command shares: the --controller/--concurrency flags as config overrides, the controller they name, and waiting for SIGTERM.
import type { Config, Controller, KubeObject } from '@conveyor/shared';
import { type Io, UsageError } from './command.ts';

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

/** The controller built into this program, or the module `--controller` / `controller:` names, loaded and checked. */
export async function resolveController(config: Config, io: Io): Promise<Controller<KubeObject, unknown>> {
  if (io.controller !== undefined) return io.controller;
  if (config.controller === undefined) throw new UsageError('--controller <module> is required (or set controller in the config file)');
  // Loaded here, not at the top: commands that need no controller should not pay for loading one.
  const { loadController } = await import('@conveyor/workers/load-controller');
  return await loadController(config.controller);
}
