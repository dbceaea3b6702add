// What `enqueue` and `status` share: the configuration, the controller module it names, and that controller's queue.

import type { Controller } from '@conveyor/shared';
import { type Config, type KubeObject, ReconcileQueue } from '@conveyor/shared';
import { type Io, loadConfigOrThrow } from './command.ts';
import { resolveController } from './controller-process.ts';

export interface ControllerQueue {
  config: Config;
  controller: Controller<KubeObject, unknown>;
  queue: ReconcileQueue;
}

export async function openControllerQueue(
  values: { config?: string | undefined; controller?: string | undefined },
  io: Io,
): Promise<ControllerQueue> {
  const config = loadConfigOrThrow(values.config, io, values.controller === undefined ? {} : { controller: values.controller });
  const controller = await resolveController(config, io);
  const queue = new ReconcileQueue({ controller: controller.name, redis: config.redis, queue: config.queue });
  return { config, controller, queue };
}
