// The repository's `conveyor` command line: the package's commands plus the demo and the benchmarks, which need this repository.
import { benchCommand } from './bench-command.ts';
import type { Io } from './command.ts';
import { conveyorVersion } from './conveyor-version.ts';
import { demoCommand } from './demo-command.ts';
import { productCommands } from './product-commands.ts';
import { type Program, processIo, runProgram } from './program.ts';

export const program: Program = {
  commands: [...productCommands, demoCommand, benchCommand],
  version: conveyorVersion,
};

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  return await runProgram(program, argv, io);
}
