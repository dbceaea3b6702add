// The `conveyor` command line: dispatches to subcommands, prints usage, maps failures to exit codes.
import { readFileSync } from 'node:fs';
import { benchCommand } from './bench-command.ts';
import { type Command, EXIT, type Io, reportFailure } from './command.ts';
import { configCommand } from './config-command.ts';
import { demoCommand } from './demo-command.ts';
import { dispatchCommand } from './dispatch-command.ts';
import { enqueueCommand } from './enqueue-command.ts';
import { simCommand } from './sim-command.ts';
import { statusCommand } from './status-command.ts';
import { watchCommand } from './watch-command.ts';
import { workerCommand } from './worker-command.ts';

export const commands: readonly Command[] = [
  simCommand(),
  watchCommand,
  workerCommand,
  dispatchCommand,
  enqueueCommand,
  statusCommand,
  demoCommand,
  benchCommand,
  configCommand,
];

export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: conveyor <command> [options]',
    '',
    'Kubernetes reconcilers as queue-fed, horizontally autoscaled workers.',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'options:',
    '  -h, --help     show this help (or `conveyor <command> --help`)',
    '  -v, --version  print the version',
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    (first === undefined ? io.err : io.out)(usage());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '-v' || first === '--version') {
    io.out(version());
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === first);
  if (command === undefined) {
    io.err(`conveyor: unknown command "${first}"`);
    io.err(usage());
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`usage: ${command.usage}\n\n${command.summary}`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    return reportFailure(command, error, io);
  }
}
