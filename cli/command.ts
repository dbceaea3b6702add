// What every CLI subcommand is, and the helpers they share: flag parsing, config loading, clear exits.
import { parseArgs } from 'node:util';
import {
  type Config,
  ConfigError,
  type Controller,
  ConveyorError,
  closest,
  configSchema,
  formatConfigProblem,
  formatDuration,
  type KubeObject,
  loadConfig,
} from '@conveyor/shared';

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** The controllers built into this program (a bundle made by `conveyor build`): used instead of `--controller`. */
  controllers?: readonly Controller<KubeObject, unknown>[];
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Every option the command takes: what it parses, and what `conveyor <command> --help` describes. */
  flags: Flags;
  /** The positional arguments, described in `--help`. */
  positionals?: Readonly<Record<string, string>>;
  /** Resolves to the process exit code. */
  run(args: string[], io: Io): Promise<number>;
}

/** Exit codes: 0 ok, 1 failure while running, 2 bad usage or bad configuration, 130 interrupted by Ctrl-C (128 + SIGINT). */
export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/** A problem with how the command was called: printed with the usage, exit 2. */
export class UsageError extends Error {}

/** One option of a command: how it is parsed and how `--help` describes it. */
export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** How the value is written in help, such as `<n>` or `<file>`; `<duration>` shows a setting's default as a duration. */
  value?: string;
  /** What the option does, in a line. */
  description: string;
  /**
   * The default as a user reads it; booleans default to off unless this says otherwise. (Not named
   * `default`: node:util's parseArgs would take that as the value itself.)
   */
  defaultText?: string;
  /** The configuration setting the option overrides: help shows that setting's default, read from the schema. */
  setting?: string;
}

export type Flags = Readonly<Record<string, Flag>>;

/**
 * Parses `args` against `flags`, strictly. Problems come back as a UsageError in Conveyor's words: an
 * unknown option with the closest known one ("did you mean --controller?"), a missing value, an
 * unexpected argument. A negative number after an option that takes a value is its value
 * (`--port -1`), so the range check can say what is wrong with it.
 */
export function parseFlags<T extends Flags>(args: string[], flags: T, allowPositionals = false) {
  const valued = new Set<string>();
  for (const [name, flag] of Object.entries(flags)) {
    if (flag.type !== 'string') continue;
    valued.add(`--${name}`);
    if (flag.short !== undefined) valued.add(`-${flag.short}`);
  }
  const joined: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (valued.has(arg) && next !== undefined && /^-\d/.test(next)) {
      joined.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`);
      i += 1;
    } else {
      joined.push(arg);
    }
  }
  try {
    return parseArgs({ args: joined, options: flags, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(parseProblem(error, flags));
  }
}

/** node:util's parse error, in Conveyor's words. */
function parseProblem(error: unknown, flags: Flags): string {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) {
    const near = closest(
      option.replace(/^-+/, ''),
      Object.keys(flags).filter((name) => name !== 'help'),
    );
    return `unknown option ${option}${near === undefined ? '' : `; did you mean --${near}?`}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) {
    const name = option.replace(/^-+/, '');
    const flag = flags[name] ?? Object.values(flags).find((f) => f.short === name);
    if (flag?.type === 'boolean') return `${option} takes no value`;
    return `${option} needs a value${flag?.value === undefined ? '' : ` (${flag.value})`}`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(message)?.[1] ?? '';
    return `unexpected argument "${arg}"`;
  }
  return message;
}

/** `conveyor <command> --help`: the usage line, the summary, then every positional and option with its default. */
export function commandHelp(command: Command): string {
  const rows: [string, string][] = [];
  for (const [name, description] of Object.entries(command.positionals ?? {})) rows.push([name, description]);
  for (const [name, flag] of Object.entries(command.flags)) {
    const left = `${flag.short === undefined ? '    ' : `-${flag.short}, `}--${name}${flag.type === 'string' ? ` ${flag.value ?? '<value>'}` : ''}`;
    rows.push([left, `${flag.description}${flag.multiple === true ? ' (may be repeated)' : ''}; default: ${defaultOf(flag)}`]);
  }
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([left]) => left.length));
  const lines = rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
  const sections = [`usage: ${command.usage}`, '', command.summary, ''];
  return [...sections, 'options:', ...lines].join('\n');
}

function defaultOf(flag: Flag): string {
  if (flag.setting !== undefined) {
    const value = settingDefault(flag.setting);
    const shown =
      value === undefined ? 'unset' : flag.value === '<duration>' && typeof value === 'number' ? formatDuration(value) : String(value);
    return `${flag.defaultText ?? shown} (${flag.setting})`;
  }
  return flag.defaultText ?? (flag.type === 'boolean' ? 'off' : 'none');
}

/** A setting's default, read from the configuration schema (so help and the schema cannot disagree). */
function settingDefault(path: string): unknown {
  let node: unknown = configSchema.parse({});
  for (const part of path.split('.'))
    node = node === null || typeof node !== 'object' ? undefined : (node as Record<string, unknown>)[part];
  return node;
}

/** The configuration; `checkFiles` also reports named files that are missing (commands that will open them). */
export function loadConfigOrThrow(file: string | undefined, io: Io, overrides?: Record<string, unknown>, checkFiles = false): Config {
  return loadConfig({ file, env: io.env, checkFiles, ...(overrides === undefined ? {} : { overrides }) });
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

/** Options several commands share, described once. */
export const COMMON_FLAGS = {
  controller: {
    type: 'string',
    value: '<module>',
    description: 'the controller module (its default export is a defineController result, or an array of them)',
    defaultText: 'the config file’s',
    setting: 'controller',
  },
  /** `--controller` for the commands that serve every controller they are given. */
  controllers: {
    type: 'string',
    multiple: true,
    value: '<module>',
    description: 'a controller module (its default export is a defineController result, or an array of them)',
    defaultText: 'the config file’s',
    setting: 'controller',
  },
  name: {
    type: 'string',
    value: '<controller>',
    description: 'which of several loaded controllers to act on',
    defaultText: 'the only one loaded',
  },
  config: {
    type: 'string',
    short: 'c',
    value: '<file>',
    description: 'configuration file (YAML or JSON), or a directory whose files merge in name order',
    defaultText: 'none: the defaults and CONVEYOR_* variables',
  },
  concurrency: {
    type: 'string',
    value: '<n>',
    description: 'reconciles at once in this process, from 1 to 10000',
    setting: 'worker.concurrency',
  },
  timeout: {
    type: 'string',
    value: '<duration>',
    description: 'longest wait for Redis or the API server before giving up with exit code 1',
    setting: 'cli.timeout',
  },
  json: { type: 'boolean', description: 'print JSON instead of text' },
} as const satisfies Flags;
