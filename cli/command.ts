// What every CLI subcommand is, and the helpers they share: flag parsing, config loading, clear exits.
import { parseArgs } from 'node:util';
import {
  type Config,
  ConfigError,
  type Controller,
  ConveyorError,
  formatConfigProblem,
  type KubeObject,
  loadConfig,
} from '@conveyor/shared';

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** A controller built into this program (a bundle made by `conveyor build`): used instead of `--controller`. */
  controller?: Controller<KubeObject, unknown>;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Resolves to the process exit code. */
  run(args: string[], io: Io): Promise<number>;
}

/** Exit codes: 0 ok, 1 failure while running, 2 bad usage or bad configuration, 130 interrupted by Ctrl-C (128 + SIGINT). */
export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/** A problem with how the command was called: printed with the usage, exit 2. */
export class UsageError extends Error {}

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export function parseFlags<T extends FlagSpec>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function loadConfigOrThrow(file: string | undefined, io: Io, overrides?: Record<string, unknown>): Config {
  return loadConfig({ file, env: io.env, ...(overrides === undefined ? {} : { overrides }) });
}

/** Turns what a command threw into the message and exit code a user should see. */
export function reportFailure(command: Command, error: unknown, io: Io): number {
  if (error instanceof UsageError) {
    io.err(`conveyor ${command.name}: ${error.message}`);
    io.err(`usage: ${command.usage}`);
    return EXIT.usage;
  }
  if (error instanceof ConfigError) {
    io.err(`conveyor ${command.name}: invalid configuration (${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}):`);
    for (const problem of error.problems) io.err(formatConfigProblem(problem));
    return EXIT.usage;
  }
  if (error instanceof ConveyorError && !error.retryable && error.code === 'INVALID_ARGUMENT') {
    io.err(`conveyor ${command.name}: ${error.message}`);
    return EXIT.usage;
  }
  io.err(`conveyor ${command.name}: ${error instanceof Error ? error.message : String(error)}`);
  return EXIT.failure;
}
