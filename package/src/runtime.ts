// What a bundle built by `conveyor build` runs: the runtime commands (watch, worker, dispatch, enqueue, status, config)
// with the controller built in, so the bundle needs neither `--controller` nor node_modules.
import { checkController, errorMessage } from '@conveyor/shared';
import { EXIT } from '../../cli/command.ts';
import { type Program, processIo, runProgram } from '../../cli/program.ts';
import { runtimeCommands } from '../../cli/runtime-commands.ts';

/** Runs `argv` (as `conveyor` would take it) with the controller module's default (or `controller`) export built in; resolves to the exit code. */
export async function runBundled(argv: string[], controllerModule: Record<string, unknown>, version: string): Promise<number> {
  let controller: ReturnType<typeof checkController>;
  try {
    controller = checkController(controllerModule.default ?? controllerModule.controller);
  } catch (error) {
    processIo.err(`conveyor: the built-in controller is not valid: ${errorMessage(error)}`);
    return EXIT.usage;
  }
  const program: Program = {
    commands: runtimeCommands,
    version: () => version,
    description: `Conveyor ${version} with the controller "${controller.name}" built in.`,
  };
  if (argv.some((arg) => arg === '--controller' || arg.startsWith('--controller='))) {
    processIo.err(`conveyor: this bundle has the controller "${controller.name}" built in; --controller is not accepted`);
    return EXIT.usage;
  }
  return await runProgram(program, argv, { ...processIo, controller });
}
