// What the one-shot commands `enqueue` and `status` share: the configuration, the controller module it names, that controller's queue, and one deadline for everything they wait on.

import type { Controller } from '@conveyor/shared';
import { type Config, type KubeObject, ReconcileQueue, redisEndpoint, UnavailableError, waitForRedis } from '@conveyor/shared';
import { type Io, loadConfigOrThrow } from './command.ts';
import { type ControllerChoice, controllerSetting, resolveController, resolveControllers } from './controller-process.ts';

export interface ControllerQueue {
  config: Config;
  controller: Controller<KubeObject, unknown>;
  queue: ReconcileQueue;
  deadline: Deadline;
}

/**
 * How long a one-shot command waits on Redis or the API server (`cli.timeout`): each wait is bounded
 * on its own, so a long but progressing selector enqueue goes on, while an unreachable dependency
 * fails the command within the timeout, in one line naming it.
 */
export class Deadline {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /**
   * `work`'s result, or UnavailableError naming `dependency` when it takes longer than the timeout;
   * the signal handed to `work` aborts then, so no request outlives the command.
   */
  async wait<T>(dependency: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    const late = () => new UnavailableError(`${dependency} did not answer within ${formatTimeout(this.timeoutMs)} (cli.timeout)`);
    let onAbort: (() => void) | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () => reject(late());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([work(signal), timedOut]);
    } catch (error) {
      // A request aborted by this signal failed because the time was up: say so, not "aborted".
      if (signal.aborted && !(error instanceof UnavailableError)) throw late();
      throw error;
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
  }
}

function formatTimeout(ms: number): string {
  return ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`;
}

/**
 * Loads the configuration and the controller, opens its queue and waits (within `cli.timeout`) for
 * Redis to answer; rejects with UnavailableError naming Redis and its last error when it does not.
 * Among several loaded controllers, `choice` says which (controller-process.ts).
 */
export async function openControllerQueue(values: CommandValues, io: Io, choice: ControllerChoice = {}): Promise<ControllerQueue> {
  const config = loadCommandConfig(values, io);
  const controller = await resolveController(config, io, { name: values.name, ...choice });
  const [opened] = await openQueues(config, [controller]);
  return opened as ControllerQueue;
}

/** Every loaded controller's queue (or only the one `--name` names), for a command that reports on all of them. */
export async function openControllerQueues(values: CommandValues, io: Io): Promise<ControllerQueue[]> {
  const config = loadCommandConfig(values, io);
  const controllers = values.name === undefined ? await resolveControllers(config, io) : [await resolveController(config, io, values)];
  return await openQueues(config, controllers);
}

/** The flags of a one-shot command that say where its queues are. */
interface CommandValues {
  config?: string | undefined;
  controller?: string | string[] | undefined;
  timeout?: string | undefined;
  name?: string | undefined;
}

function loadCommandConfig(values: CommandValues, io: Io) {
  const overrides: Record<string, unknown> = {};
  if (values.controller !== undefined) overrides.controller = controllerSetting(values.controller);
  if (values.timeout !== undefined) overrides['cli.timeout'] = values.timeout;
  return loadConfigOrThrow(values.config, io, overrides);
}

async function openQueues(config: Config, controllers: readonly Controller<KubeObject, unknown>[]): Promise<ControllerQueue[]> {
  const deadline = new Deadline(config.cli.timeout);
  const opened: ControllerQueue[] = [];
  try {
    for (const controller of controllers) {
      const queue = new ReconcileQueue({ controller: controller.name, redis: config.redis, queue: config.queue });
      opened.push({ config, controller, queue, deadline });
      await waitForRedis(queue.redis, { timeoutMs: deadline.timeoutMs, setting: 'cli.timeout' });
      // A queue.partitions other than the queue's in Redis would show, retry or enqueue into the wrong queues.
      await deadline.wait(redisEndpoint(config.redis), () => queue.checkLayout());
    }
  } catch (error) {
    await Promise.all(opened.map((o) => o.queue.close()));
    throw error;
  }
  return opened;
}
