// The commands a deployed controller runs: what a bundle built by `conveyor build` offers, with its controller built in.
import type { Command } from './command.ts';
import { configCommand } from './config-command.ts';
import { dispatchCommand } from './dispatch-command.ts';
import { enqueueCommand } from './enqueue-command.ts';
import { parkedCommand } from './parked-command.ts';
import { statusCommand } from './status-command.ts';
import { watchCommand } from './watch-command.ts';
import { workerCommand } from './worker-command.ts';

export const runtimeCommands: readonly Command[] = [
  watchCommand,
  workerCommand,
  dispatchCommand,
  enqueueCommand,
  statusCommand,
  parkedCommand,
  configCommand,
];
