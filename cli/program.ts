// Runs a `conveyor` program: a set of subcommands behind one usage text, --help and --version, and the exit code of the one that ran.
//
// The repository's CLI (cli/main.ts), the kube-conveyor package's bin and a bundle built by `conveyor build`
// differ only in which commands they offer and where their version comes from; this is what they share.
import { closest } from '@conveyor/shared';
import { type Command, commandHelp, EXIT, type Io, reportFailure } from './command.ts';

export interface Program {
  commands: readonly Command[];
  version: () => string;
  /** First line of the usage text after `usage: conveyor <command> [options]`. */
  description?: string;
}

export function usage(program: Program): string {
  const width = Math.max(...program.commands.map((c) => c.name.length));
  return [
    'usage: conveyor <command> [options]',
    '',
    program.description ?? 'Kubernetes reconcilers as queue-fed, horizontally autoscaled workers.',
    '',
    'commands:',
    ...program.commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'options:',
    '  -h, --help     show this help (or `conveyor <command> --help`)',
    '  -v, --version  print the version',
  ].join('\n');
}

/** The standard streams and environment of this process. */
export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

export async function runProgram(program: Program, argv: string[], io: Io = processIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    (first === undefined ? io.err : io.out)(usage(program));
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '-v' || first === '--version') {
    io.out(program.version());
    return EXIT.ok;
  }
  const command = program.commands.find((c) => c.name === first);
  if (command === undefined) {
    if (first.startsWith('-')) {
      io.err(`conveyor: unknown option ${first}; give a command first, as in \`conveyor <command> ${first}\``);
    } else {
      const near = closest(
        first,
        program.commands.map((c) => c.name),
      );
      io.err(`conveyor: unknown command "${first}"${near === undefined ? '' : `; did you mean ${near}?`}`);
    }
    io.err(usage(program));
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(commandHelp(command));
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    return reportFailure(command, error, io);
  }
}
