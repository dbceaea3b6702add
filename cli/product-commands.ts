// The commands the kube-conveyor package's `conveyor` offers: the runtime ones, plus the simulator and the project tools (init, build).
import { buildCommand } from './build/build-command.ts';
import type { Command } from './command.ts';
import { initCommand } from './init/init-command.ts';
import { runtimeCommands } from './runtime-commands.ts';
import { simCommand } from './sim-command.ts';

export const productCommands: readonly Command[] = [initCommand, buildCommand, simCommand(), ...runtimeCommands];
