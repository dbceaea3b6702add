// Several controllers in one deployment: what a module may export (one controller or an array of them), and how one
// process's slots are shared by the controllers it serves.
//
// # Why fixed slots per controller
// Each controller keeps its own BullMQ queue, and a worker process runs one BullMQ Worker per queue with
// `slots` of its own (controller-runtime gives each controller its own workqueue and MaxConcurrentReconciles
// the same way). A burst on one controller fills only that controller's slots: another controller's request
// waits only for one of its own slots, never behind the burst. Slots are not lent while a controller is idle —
// lending would make the idle controller's next request wait for a borrowed slot's reconcile to finish, which is
// the starvation this prevents. The process's `worker.concurrency` is split by `controllers.<name>.share`
// (default 1 each), every controller getting at least one slot.
import type { Config } from './config.ts';
import { type Controller, checkController } from './controller.ts';
import { InvalidArgumentError } from './errors.ts';
import type { KubeObject } from './kube/types.ts';

/** What a controller module exported: one controller (`export default defineController(...)`) or an array of them. */
export function checkControllers(value: unknown): Controller<KubeObject, unknown>[] {
  if (!Array.isArray(value)) return [checkController(value)];
  if (value.length === 0)
    throw new InvalidArgumentError('the exported array of controllers is empty; export at least one defineController({...})');
  const controllers = value.map((entry, index) => {
    try {
      return checkController(entry);
    } catch (error) {
      throw new InvalidArgumentError(`controller ${index} of the exported array: ${(error as Error).message}`, { cause: error });
    }
  });
  return uniqueControllers(controllers);
}

/** `controllers`, refusing two with the same name: each name is a queue, a Lease, a field manager and a metric label. */
export function uniqueControllers<C extends { name: string }>(controllers: readonly C[]): C[] {
  const seen = new Set<string>();
  for (const controller of controllers) {
    if (seen.has(controller.name)) {
      throw new InvalidArgumentError(
        `two controllers are named "${controller.name}"; each controller in one deployment needs its own name`,
      );
    }
    seen.add(controller.name);
  }
  return [...controllers];
}

/**
 * The slots of each controller in one process: `total` split in proportion to the shares (largest remainder, so
 * they add up to `total`), each at least 1. One controller gets `total`.
 */
export function controllerSlots(total: number, shares: readonly { name: string; share: number }[]): Map<string, number> {
  const sum = shares.reduce((s, c) => s + c.share, 0);
  const exact = shares.map((c) => ({ name: c.name, exact: (total * c.share) / sum }));
  const slots = new Map(exact.map((c) => [c.name, Math.max(1, Math.floor(c.exact))]));
  let left = total - [...slots.values()].reduce((s, n) => s + n, 0);
  for (const c of [...exact].sort((a, b) => (b.exact % 1) - (a.exact % 1))) {
    if (left <= 0) break;
    slots.set(c.name, (slots.get(c.name) ?? 1) + 1);
    left -= 1;
  }
  return slots;
}

/**
 * Each controller's configuration in a process serving `names`: the process's configuration with `worker.concurrency`
 * set to the controller's slots. Throws InvalidArgumentError for a `controllers.<name>` entry naming none of them.
 */
export function configsPerController(config: Config, names: readonly string[]): Map<string, Config> {
  const unknown = Object.keys(config.controllers).filter((name) => !names.includes(name));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`controllers.${unknown[0]}: no controller of that name is loaded (loaded: ${names.join(', ')})`);
  }
  const slots = controllerSlots(
    config.worker.concurrency,
    names.map((name) => ({ name, share: config.controllers[name]?.share ?? 1 })),
  );
  return new Map(names.map((name) => [name, { ...config, worker: { ...config.worker, concurrency: slots.get(name) ?? 1 } }]));
}
