// What a bundle built by `conveyor build` runs: the runtime commands (watch, worker, dispatch, enqueue, status, config)
// with the controller built in, so the bundle needs neither `--controller` nor node_modules.
import { type Controller, checkControllers, errorMessage, type KubeObject, uniqueControllers } from '@conveyor/shared';
import { EXIT } from '../../cli/command.ts';
import { type Program, processIo, runProgram } from '../../cli/program.ts';
import { runtimeCommands } from '../../cli/runtime-commands.ts';

/**
 * Runs `argv` (as `conveyor` would take it) with the controller modules' default (or `controller`) exports built in — each
 * one controller or an array of them; resolves to the exit code.
 */
export async function runBundled(
  argv: string[],
  controllerModules: Record<string, unknown> | readonly Record<string, unknown>[],
  version: string,
): Promise<number> {
  let controllers: Controller<KubeObject, unknown>[];
  try {
    const modules = Array.isArray(controllerModules) ? controllerModules : [controllerModules];
    controllers = uniqueControllers(modules.flatMap((m: Record<string, unknown>) => checkControllers(m.default ?? m.controller)));
  } catch (error) {
    processIo.err(`conveyor: the built-in controller is not valid: ${errorMessage(error)}`);
    return EXIT.usage;
  }
  const names = controllers.map((c) => `"${c.name}"`).join(', ');
  const which = controllers.length === 1 ? `the controller ${names}` : `the controllers ${names}`;
  const program: Program = {
    commands: runtimeCommands,
    version: () => version,
    description: `Conveyor ${version} with ${which} built in.`,
  };
  if (argv.some((arg) => arg === '--controller' || arg.startsWith('--controller='))) {
    processIo.err(`conveyor: this bundle has ${which} built in; --controller is not accepted`);
    return EXIT.usage;
  }
  return await runProgram(program, argv, { ...processIo, controllers });
}
