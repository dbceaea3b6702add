// `conveyor parked`: the requests that failed for good or ran out of attempts — list them, run them again, or discard them.
//
// Like `conveyor enqueue` it talks to Redis directly, from an operator's shell or `kubectl exec` into a pod: whoever can
// reach the controller's Redis can act on its queue (see docs/operating.md).
import {
  formatKey,
  InvalidArgumentError,
  InvalidKeyError,
  type ObjectKey,
  parseKey,
  type ResourceRef,
  redisEndpoint,
} from '@conveyor/shared';
import { COMMON_FLAGS, type Command, EXIT, type Flags, type Io, parseFlags, UsageError } from './command.ts';
import { type ControllerQueue, openControllerQueue } from './controller-queue.ts';
import { keyFromTarget } from './enqueue-command.ts';

const ACTIONS = ['list', 'retry', 'discard'] as const;
type Action = (typeof ACTIONS)[number];

const FLAGS = {
  controller: COMMON_FLAGS.controllers,
  name: COMMON_FLAGS.name,
  config: COMMON_FLAGS.config,
  json: { ...COMMON_FLAGS.json, description: 'list: print JSON instead of a table' },
  top: { type: 'string', value: '<n>', description: 'list: how many, newest first (1 to 10000)', defaultText: '100' },
  all: { type: 'boolean', description: 'retry or discard: every parked request instead of one <key>' },
  timeout: COMMON_FLAGS.timeout,
} as const satisfies Flags;

export const parkedCommand: Command = {
  name: 'parked',
  summary: 'list parked requests, run them again, or discard them',
  usage:
    'conveyor parked (list [--top <n>] [--json] | retry (<key> | --all) | discard (<key> | --all)) [--controller <module> …] [--name <controller>] [--config <file>] [--timeout <duration>]',
  flags: FLAGS,
  positionals: {
    'list | retry | discard': 'show parked requests, run them again with fresh attempts, or drop them',
    '<key>': 'as `list` prints it (example.com/v1/widgets/default/w-1), or <namespace>/<name> of the controller’s resource',
  },
  async run(args, io) {
    const { values, positionals } = parseFlags(args, FLAGS, true);
    const [action, target, ...extra] = positionals;
    if (action === undefined) throw new UsageError('missing list, retry or discard');
    if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}": use list, retry or discard`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (action === 'list' && (target !== undefined || values.all === true)) throw new UsageError('list takes no <key> and no --all');
    if (action !== 'list') {
      if (values.top !== undefined || values.json === true) throw new UsageError(`${action} takes no --top or --json`);
      if ((target === undefined) === (values.all !== true)) throw new UsageError(`${action} needs a <key> or --all, not both`);
    }
    const top = values.top === undefined ? 100 : Number(values.top);
    if (!Number.isInteger(top) || top < 1 || top > 10_000)
      throw new UsageError(`--top must be a whole number from 1 to 10000, got "${values.top}"`);

    const opened = await openControllerQueue(values, io);
    try {
      if (action === 'list') return await list(opened, top, values.json === true, io);
      const ref = opened.controller.for;
      const key = target === undefined ? undefined : parkedKey(target, ref, ref.namespaced ?? true);
      return await act(opened, action as Exclude<Action, 'list'>, key, io);
    } finally {
      await opened.queue.close();
    }
  },
};

async function list({ config, queue, deadline }: ControllerQueue, top: number, json: boolean, io: Io): Promise<number> {
  const found = await deadline.wait(redisEndpoint(config.redis), () => queue.listParked(top));
  const parked = found.map((p) => ({
    key: formatKey(p.key),
    reason: p.parked,
    attempts: p.attempts,
    firstFailure: new Date(p.firstFailedAt).toISOString(),
    lastFailure: new Date(p.parkedAt).toISOString(),
    error: p.error,
    enqueuedFor: p.reason,
  }));
  if (json) {
    io.out(JSON.stringify(parked, null, 2));
    return EXIT.ok;
  }
  if (parked.length === 0) {
    io.out('nothing parked');
    return EXIT.ok;
  }
  const width = Math.max(3, ...parked.map((p) => p.key.length));
  io.out(`${'KEY'.padEnd(width)}  REASON     ATTEMPTS  FIRST FAILURE             LAST FAILURE              ERROR`);
  for (const p of parked) {
    io.out(
      `${p.key.padEnd(width)}  ${p.reason.padEnd(9)}  ${String(p.attempts).padEnd(8)}  ${p.firstFailure}  ${p.lastFailure}  ${p.error}`,
    );
  }
  io.out(
    `newest first${parked.length === top ? `, the first ${top} (--top)` : ''}. Run again: conveyor parked retry <key> | --all; drop: conveyor parked discard <key> | --all`,
  );
  return EXIT.ok;
}

async function act(
  { config, queue, deadline }: ControllerQueue,
  action: Exclude<Action, 'list'>,
  key: ObjectKey | undefined,
  io: Io,
): Promise<number> {
  const what = key === undefined ? 'all keys' : formatKey(key);
  const count = await deadline.wait(redisEndpoint(config.redis), () =>
    action === 'retry' ? queue.retryParked(key) : queue.discardParked(key),
  );
  if (count === 0) {
    io.err(`conveyor parked ${action}: nothing parked${key === undefined ? '' : ` for ${what}`}`);
    return EXIT.failure;
  }
  const requests = `${count} parked request${count === 1 ? '' : 's'} (${what})`;
  io.out(
    action === 'retry'
      ? `re-enqueued ${requests} with fresh attempts`
      : `discarded ${requests}; the object's next change, or a conveyor enqueue, asks for a reconcile again`,
  );
  return EXIT.ok;
}

/** A key as `list` prints it, or `<namespace>/<name>` (`<name>` when cluster-scoped) of the controller's resource. */
function parkedKey(target: string, ref: ResourceRef, namespaced: boolean): ObjectKey {
  if (target.split('/').length < 4) return keyFromTarget(ref, namespaced, target, undefined);
  let key: ObjectKey;
  try {
    key = parseKey(target);
  } catch (error) {
    if (error instanceof InvalidKeyError) throw new InvalidArgumentError(error.message);
    throw error;
  }
  if (key.group !== ref.group || key.version !== ref.version || key.plural !== ref.plural) {
    throw new InvalidArgumentError(`"${target}" is not a key of this controller's resource, ${ref.plural}`);
  }
  return key;
}
