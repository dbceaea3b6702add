// The kube-conveyor package's `conveyor` command (bin/conveyor.js runs it): init, build, sim and the runtime commands.
import { conveyorVersion } from '../../cli/conveyor-version.ts';
import { productCommands } from '../../cli/product-commands.ts';
import { runProgram } from '../../cli/program.ts';

export async function main(argv: string[]): Promise<number> {
  return await runProgram({ commands: productCommands, version: conveyorVersion }, argv);
}
