// What every per-controller command shares: the --controller/--concurrency flags as config overrides, the controller they name, and a run that honours SIGTERM/SIGINT at every stage.
//
// Expected flow: `runUntilStopped` starts the process's work with an AbortSignal, waits for the first
// SIGTERM or SIGINT (or for the npm/npx process that launched it to exit), then closes it.
// Guarantees:
// - A stop that arrives while the work is still starting (waiting for Redis, say) aborts the start:
//   the process exits 0 at once instead of after the dependency answers.
// - The process exits within `graceMs` of the stop (plus a small margin) even if closing hangs on
//   a dependency that went away: it then says so and exits 1. A second signal exits at once (130 for
//   SIGINT, 143 for SIGTERM), as a user pressing Ctrl-C twice expects.
// - Started through `npx conveyor …` or `npm run`, the process stops when that launcher exits: a
//   shell's `kill $!` ends npm, and without this the server it started would keep running, orphaned.
import type { Config, Controller, KubeObject, Logger } from '@conveyor/shared';
import { type Io, UsageError } from './command.ts';

/** `--controller` (once or more) and `--concurrency` as config overrides, with a usage error for a bad concurrency. */
export function controllerOverrides(values: {
  controller?: string | string[] | undefined;
  concurrency?: string | undefined;
}): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  if (values.concurrency !== undefined) {
    if (!/^[1-9]\d*$/.test(values.concurrency))
      throw new UsageError(`--concurrency must be a whole number from 1 to 10000, got "${values.concurrency}"`);
    overrides['worker.concurrency'] = Number(values.concurrency);
  }
  if (values.controller !== undefined) overrides.controller = controllerSetting(values.controller);
  return overrides;
}

/** How a run reports what it does: JSON log lines for the Kubernetes processes, plain lines for `sim`. */
export type Say = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/** `--controller` given once is the `controller` setting as a string, as before; given several times, a list. */
export function controllerSetting(flag: string | string[]): string | string[] {
  return typeof flag === 'string' ? flag : flag.length === 1 ? (flag[0] as string) : flag;
}

/** A Say that writes JSON lines through the process's logger. */
export function logSay(logger: Logger): Say {
  return (level, message, fields = {}) => logger[level](fields, message);
}

export interface StopSources {
  /** Calls `listener` on each SIGTERM/SIGINT, or once when the launcher exits; returns an unsubscribe. */
  onStop(listener: (why: NodeJS.Signals | 'launcher exited') => void): () => void;
  /** Ends the process now (the backstop when closing hangs, or a second signal). */
  exit(code: number): void;
}

export interface RunOptions<H extends { close(): Promise<void> }> {
  /** How long closing may take after the stop. */
  graceMs: number;
  say: Say;
  /** Starts the work; rejects with the signal's reason when the stop comes first. */
  start(signal: AbortSignal): Promise<H>;
  /** Told once the work runs (to print where it serves). */
  started?(handle: H): void;
  /** What closing does, for the "stopping" line. */
  stopping: string;
}

/** Extra time past the grace period before the process gives up on closing. */
const CLOSE_MARGIN_MS = 3_000;
/** After a clean close, how long leftover handles (a socket Redis never answered) may keep the process alive. */
const EXIT_BACKSTOP_MS = 1_000;

/** Runs until the first stop, then closes within the grace period; resolves to the exit code. */
export async function runUntilStopped<H extends { close(): Promise<void> }>(
  options: RunOptions<H>,
  sources: StopSources = processStopSources(),
): Promise<number> {
  const stop = new AbortController();
  let stops = 0;
  const unsubscribe = sources.onStop((why) => {
    stops += 1;
    if (stops === 1) {
      options.say('info', `${why}: ${options.stopping}`, { signal: why, graceMs: options.graceMs });
      stop.abort(new StoppedError(why));
      return;
    }
    options.say('warn', `${why} again: exiting without waiting`, { signal: why });
    sources.exit(why === 'SIGINT' ? 130 : 143);
  });
  try {
    let handle: H;
    try {
      handle = await options.start(stop.signal);
    } catch (error) {
      if (!stop.signal.aborted) throw error;
      options.say('info', 'stopped before it finished starting');
      return 0;
    }
    if (!stop.signal.aborted) {
      options.started?.(handle);
      await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
    }
    const closed = await settled(handle.close(), options.graceMs + CLOSE_MARGIN_MS);
    if (!closed) {
      options.say('error', `did not finish stopping within ${options.graceMs} ms (+${CLOSE_MARGIN_MS} ms); exiting anyway`);
      sources.exit(1);
      return 1;
    }
    setTimeout(() => sources.exit(0), EXIT_BACKSTOP_MS).unref();
    return 0;
  } finally {
    unsubscribe();
  }
}

/** The reason a start is aborted with. */
class StoppedError extends Error {
  constructor(why: string) {
    super(`stopped by ${why}`);
    this.name = 'StoppedError';
  }
}

async function settled(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How often to look whether the launcher (npm, npx) still runs. */
const LAUNCHER_POLL_MS = 1_000;

/**
 * SIGTERM and SIGINT of this process, and the exit of the npm/npx process that launched it (npm
 * sets `npm_command` in its children's environment; when it dies, its children are re-parented).
 */
export function processStopSources(env: NodeJS.ProcessEnv = process.env): StopSources {
  return {
    onStop(listener) {
      const onTerm = () => listener('SIGTERM');
      const onInt = () => listener('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      let poll: NodeJS.Timeout | undefined;
      if (env.npm_command !== undefined && env.npm_command !== '') {
        const parent = process.ppid;
        poll = setInterval(() => {
          if (process.ppid === parent) return;
          clearInterval(poll);
          listener('launcher exited');
        }, LAUNCHER_POLL_MS);
        poll.unref();
      }
      return () => {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        clearInterval(poll);
      };
    },
    exit: (code) => process.exit(code),
  };
}

/**
 * The controllers built into this program, or those the `--controller` / `controller:` modules export (one module or
 * several, each exporting one controller or an array), loaded and checked.
 */
export async function resolveControllers(config: Config, io: Io): Promise<Controller<KubeObject, unknown>[]> {
  if (io.controllers !== undefined) return [...io.controllers];
  if (config.controller === undefined) throw new UsageError('--controller <module> is required (or set controller in the config file)');
  // Loaded here, not at the top: commands that need no controller should not pay for loading one.
  const { loadControllers } = await import('@conveyor/workers/load-controller');
  return await loadControllers(config.controller);
}

/** How a one-controller command chooses among several loaded: `--name`, or the resource it was given. */
export interface ControllerChoice {
  name?: string | undefined;
  /** A resource as the command took it (`widgets`, `widgets.example.com`, `widgets.v1.example.com`). */
  resource?: string | undefined;
}

/** The names a user may give a controller's resource by: `widgets`, `widgets.example.com`, `widgets.v1.example.com`. */
export function resourceNames(controller: Controller<KubeObject, unknown>): string[] {
  const ref = controller.for;
  return [ref.plural, ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`, `${ref.plural}.${ref.version}.${ref.group}`];
}

/**
 * The one controller a command acts on: the only one loaded, or among several the one named by `--name`, or else
 * the only one reconciling the resource the command was given; a usage error naming the choices otherwise.
 */
export async function resolveController(config: Config, io: Io, choice: ControllerChoice = {}): Promise<Controller<KubeObject, unknown>> {
  const controllers = await resolveControllers(config, io);
  const names = controllers.map((c) => c.name).join(', ');
  if (choice.name !== undefined) {
    const named = controllers.find((c) => c.name === choice.name);
    if (named === undefined) throw new UsageError(`--name ${choice.name}: no controller of that name is loaded (loaded: ${names})`);
    return named;
  }
  if (controllers.length === 1) return controllers[0] as Controller<KubeObject, unknown>;
  const resource = choice.resource;
  const matching = resource === undefined ? [] : controllers.filter((c) => resourceNames(c).includes(resource));
  if (matching.length === 1) return matching[0] as Controller<KubeObject, unknown>;
  throw new UsageError(`${controllers.length} controllers are loaded (${names}); say which with --name <controller>`);
}

/**
 * `start`, with the OpenTelemetry SDK set up first when the OTEL_* variables ask for traces (config.tracing)
 * and shut down after the process closes, so its last spans are sent. Without them nothing is loaded.
 */
export function traced<H extends { close(): Promise<void> }>(
  config: Config,
  process: 'watcher' | 'worker' | 'dispatcher',
  start: (signal: AbortSignal) => Promise<H>,
): (signal: AbortSignal) => Promise<H> {
  return async (signal) => {
    if (!config.tracing.enabled) return await start(signal);
    const { setupTracing } = await import('@conveyor/shared/tracing-sdk');
    const tracing = setupTracing(config.tracing, `conveyor-${process}`);
    const handle = await start(signal);
    const close = handle.close.bind(handle);
    handle.close = async () => {
      await close();
      await tracing?.shutdown().catch(() => undefined);
    };
    return handle;
  };
}
