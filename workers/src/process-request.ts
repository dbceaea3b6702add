// Runs one reconcile request end to end: read the object, keep our finalizer, run finalize or reconcile, write status once, return an outcome.
import { randomUUID } from 'node:crypto';
import {
  ATTR,
  type Clock,
  type Controller,
  DEFAULT_FINALIZE_DEADLINE_MS,
  done,
  durationOption,
  errorMessage,
  failSpan,
  fieldManagerOf,
  formatDuration,
  formatKey,
  inSpan,
  type KubeClient,
  type KubeObject,
  type Logger,
  normalizeKubeError,
  type ObjectEvents,
  type ObjectKey,
  type Outcome,
  outcomeFromError,
  parseOutcome,
  type ReconcileContext,
  requestedAtOf,
  requeueAfter,
  SPAN,
  type StoredObject,
  systemClock,
  TerminalError,
  TimeoutError,
  validateKey,
} from '@conveyor/shared';
import { type EventRecorder, RunEvents } from './event-recorder.ts';
import { addFinalizer, applyStatus, removeFinalizer, writeStatus } from './object-writes.ts';
import { setControllerReference } from './owner-reference.ts';
import { StatusCollector } from './status-patch.ts';
import { withTimeout } from './timeout.ts';

/** What the queue hands over: identity and bookkeeping, never the object. */
export interface ProcessableRequest {
  key: ObjectKey;
  reason: string;
  attempt: number;
}

export interface ProcessDependencies<D> {
  client: KubeClient;
  logger: Logger;
  deps: D;
  reconcileTimeoutMs: number;
  finalizeTimeoutMs: number;
  /** @defaultValue crypto.randomUUID */
  newReconcileId?: () => string;
  /** Writes `ctx.events` (Events about the object, counted in series in Redis). @defaultValue none: Events are logged at debug and dropped */
  events?: EventRecorder;
  /** `queue.attempts`: a failure of the last attempt parks the request, which records a Warning Event. @defaultValue 1 */
  attempts?: number;
  /** Tells how long a deleting object has waited for its finalize. @defaultValue systemClock */
  clock?: Pick<Clock, 'now'>;
  /** Told when the run crashed on a bug rather than failed ({@link isPanic}): controller-runtime's panics counter. */
  onPanic?: () => void;
}

const BUG_ERRORS = [TypeError, ReferenceError, RangeError, SyntaxError];

/**
 * Whether a thrown value means the reconcile crashed on a bug rather than failed — controller-runtime's
 * "panic". JavaScript raises TypeError, ReferenceError, RangeError and SyntaxError for code that is wrong
 * (reading a property of undefined, calling what is not a function); a library that turns a failed request
 * into one (undici's `fetch failed`) gives it a `cause`, so those do not count. A thrown non-Error counts.
 */
export function isPanic(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  return BUG_ERRORS.some((type) => error.constructor === type) && error.cause === undefined;
}

/**
 * Processes one request and never throws: every failure, including a thrown non-Error, a rejected
 * promise and a timeout, comes back as an error outcome for the queue to back off on.
 *
 * Expected flow: GET the object (404: gone, done). Being deleted with our finalizer: `finalize`
 * under its timeout, then remove only our finalizer. Otherwise: add our finalizer if missing, then
 * `reconcile` under its timeout, then write the collected status once.
 *
 * Guarantees: every write carries the resourceVersion this run read (a JSON patch replacing
 * `metadata.resourceVersion`, a merge patch containing it), so a run that lost its queue lock and
 * overlaps a newer one gets 409 Conflict instead of writing back stale state. Our finalizer is
 * removed with a `test` of its index, so another controller's finalizer is never removed.
 * If `finalize` was started, the finalizer stays until a `finalize` has succeeded.
 */
export async function processRequest<T extends KubeObject, D>(
  controller: Controller<T, D>,
  request: ProcessableRequest,
  dependencies: ProcessDependencies<D>,
): Promise<Outcome> {
  const reconcileId = (dependencies.newReconcileId ?? randomUUID)();
  const attributes = { [ATTR.controller]: controller.name, [ATTR.reason]: request.reason, [ATTR.attempt]: request.attempt };
  return await inSpan(SPAN.reconcile, { attributes }, async (span) => {
    const started = Date.now();
    let log = dependencies.logger.child({ reconcileId, attempt: request.attempt });
    const run: RunState = {};
    try {
      validateKey(request.key);
      log = log.child({ key: formatKey(request.key) });
      span.setAttribute(ATTR.key, formatKey(request.key));
      const ref = controller.for;
      const key = request.key;
      if (key.group !== ref.group || key.version !== ref.version || key.plural !== ref.plural) {
        throw new TerminalError(
          `request for ${formatKey(key)} does not belong to controller "${controller.name}", which reconciles ${ref.plural}`,
        );
      }
      const outcome = await runRequest(controller, request, dependencies, reconcileId, log, run);
      await run.events?.flush();
      span.setAttribute(ATTR.outcome, outcome.kind);
      // One line per successful reconcile at the default level: what a user starting out looks for in the worker's log.
      log.info({ outcome, durationMs: Date.now() - started }, 'reconciled');
      return outcome;
    } catch (error) {
      if (isPanic(error)) dependencies.onPanic?.();
      const outcome = outcomeFromError(normalizeKubeError(error));
      span.setAttribute(ATTR.outcome, outcome.kind);
      failSpan(span, error);
      // The queue logs every failed outcome at warn; the stack is for whoever turns on debug.
      log.debug({ outcome, err: error instanceof Error ? error : undefined }, 'request failed');
      await run.events?.flush();
      const chosen = withErrorPolicy(controller, request, dependencies, reconcileId, log, run, error, outcome);
      await recordParked(controller, request, dependencies, run, chosen, log);
      return chosen;
    }
  });
}

/** What one run learned that its failure path needs: the object it read, and the Events it recorded. */
interface RunState {
  object?: StoredObject;
  events?: RunEvents;
}

async function runRequest<T extends KubeObject, D>(
  controller: Controller<T, D>,
  request: ProcessableRequest,
  dependencies: ProcessDependencies<D>,
  reconcileId: string,
  log: Logger,
  run: RunState,
): Promise<Outcome> {
  const { client } = dependencies;
  const key = request.key;
  let object = await client.find<T>(key);
  if (object === undefined) {
    log.debug('object is gone; nothing to do');
    return done;
  }
  run.object = object;
  const finalizer = controller.finalizer;
  const finalizers = object.metadata.finalizers ?? [];

  if (object.metadata.deletionTimestamp !== undefined && finalizer !== undefined) {
    if (!finalizers.includes(finalizer) || controller.finalize === undefined) return done;
    const finalize = controller.finalize;
    const current = object;
    const returned = await withTimeout(`finalize of ${formatKey(key)}`, dependencies.finalizeTimeoutMs, (signal) => {
      const ctx = contextFor<T, D>({ request, dependencies, reconcileId, log, signal, object: current, run, phase: 'Finalize' }, undefined);
      return finalize(current, ctx);
    });
    const outcome = returnedOutcome(returned, 'finalize');
    if (outcome.kind === 'requeueAfter') {
      checkFinalizeDeadline(controller.finalizeDeadline, current, (dependencies.clock ?? systemClock).now());
      log.debug({ outcome }, 'finalize not finished yet; our finalizer stays');
      return outcome;
    }
    await removeFinalizer(client, key, current, finalizer);
    log.info('finalized; our finalizer removed');
    return done;
  }

  if (finalizer !== undefined && !finalizers.includes(finalizer) && object.metadata.deletionTimestamp === undefined) {
    object = await addFinalizer(client, key, object, finalizer);
    run.object = object;
  }

  const status = new StatusCollector();
  const current = object;
  // Flux's handshake: the request this run answers goes into status with whatever else it writes.
  const requested = controller.lastHandledReconcileAt === true ? requestedAtOf(current.metadata) : undefined;
  if (requested !== undefined) status.add({ lastHandledReconcileAt: requested });
  let returned: unknown;
  let thrown: { error: unknown } | undefined;
  try {
    returned = await withTimeout(`reconcile of ${formatKey(key)}`, dependencies.reconcileTimeoutMs, (signal) => {
      const ctx = contextFor<T, D>({ request, dependencies, reconcileId, log, signal, object: current, run, phase: 'Reconcile' }, status);
      return controller.reconcile(current, ctx);
    });
  } catch (error) {
    // A timed-out reconcile may still be running: write nothing on its behalf.
    if (error instanceof TimeoutError) throw error;
    thrown = { error };
  }
  // Status collected before a throw is written too: a reconcile reports why it failed (Ready=False) that way.
  await inSpan(SPAN.statusWrite, {}, async () => {
    if (controller.statusWrite === 'merge-patch') await writeStatus(client, key, current, status);
    else await applyStatus(client, fieldManagerOf(controller.name), current, status);
  });
  if (thrown !== undefined) throw thrown.error;
  return returnedOutcome(returned);
}

/** What a run's context is made from. */
interface RunInputs<D> {
  request: ProcessableRequest;
  dependencies: ProcessDependencies<D>;
  reconcileId: string;
  log: Logger;
  signal: AbortSignal;
  object: StoredObject;
  run: RunState;
  phase: 'Reconcile' | 'Finalize';
}

function contextFor<T extends KubeObject, D>(
  { request, dependencies, reconcileId, log, signal, object, run, phase }: RunInputs<D>,
  status: StatusCollector | undefined,
): ReconcileContext<T, D> {
  const client = dependencies.client.withSignal(signal);
  const recorder = dependencies.events;
  const events = recorder === undefined ? loggedEvents(log) : recorder.forRun(object, client, log, phase);
  if (events instanceof RunEvents) run.events = events;
  return {
    client,
    events,
    own: (child) => setControllerReference(object, child),
    log,
    key: request.key,
    attempt: request.attempt,
    reconcileId,
    reason: request.reason,
    signal,
    deps: dependencies.deps,
    done,
    requeueAfter,
    TerminalError,
    patchStatus(patch) {
      if (signal.aborted) return;
      if (status === undefined) {
        log.warn('patchStatus during finalize is ignored: the object is going away');
        return;
      }
      status.add(patch);
    },
  };
}

/**
 * The controller's errorPolicy, for an error worth retrying: its delay goes into the outcome, where the queue's
 * backoff strategy reads it. A policy that throws or answers nonsense leaves the default backoff, with a warning.
 */
function withErrorPolicy<T extends KubeObject, D>(
  controller: Controller<T, D>,
  request: ProcessableRequest,
  dependencies: ProcessDependencies<D>,
  reconcileId: string,
  log: Logger,
  run: RunState,
  error: unknown,
  outcome: Outcome,
): Outcome {
  const policy = controller.errorPolicy;
  if (policy === undefined || outcome.kind !== 'error' || error instanceof TimeoutError) return outcome;
  const ctx = { key: request.key, attempt: request.attempt, reason: request.reason, reconcileId, log, deps: dependencies.deps };
  try {
    const delay = policy(error, run.object as StoredObject<T> | undefined, ctx);
    if (delay === undefined) return outcome;
    const chosen = requeueAfter(delay);
    if (chosen.kind !== 'requeueAfter') return outcome;
    return { ...outcome, delayMs: chosen.delayMs };
  } catch (policyError) {
    log.warn({ err: errorMessage(policyError) }, 'errorPolicy failed; the default backoff applies');
    return outcome;
  }
}

/** `ctx.events` of a process without a recorder (unit tests, tools): the Events go to the debug log only. */
function loggedEvents(log: Logger): ObjectEvents {
  const note = (type: string) => (reason: string, note: string) => log.debug({ type, reason, note }, 'Event (no recorder: not written)');
  return { normal: note('Normal'), warning: note('Warning') };
}

/**
 * A request that will be parked — terminal, or out of attempts — records a Warning Event about its object
 * (`ReconcileParked`, with the error), so `kubectl describe` shows why the controller stopped trying.
 */
async function recordParked<T extends KubeObject, D>(
  controller: Controller<T, D>,
  request: ProcessableRequest,
  dependencies: ProcessDependencies<D>,
  run: RunState,
  outcome: Outcome,
  log: Logger,
): Promise<void> {
  const parks = outcome.kind === 'terminal' || (outcome.kind === 'error' && request.attempt >= (dependencies.attempts ?? 1));
  if (!parks || run.object === undefined || dependencies.events === undefined) return;
  const deleting = run.object.metadata.deletionTimestamp !== undefined && controller.finalizer !== undefined;
  const note = `${outcome.message} (attempt ${request.attempt}); parked until the next resync, a change or \`conveyor parked retry\``;
  await dependencies.events.record(
    run.object,
    dependencies.client,
    log,
    'Warning',
    'ReconcileParked',
    note,
    deleting ? 'Finalize' : 'Reconcile',
  );
}

/** What reconcile (or finalize) returned: nothing is done; anything that is not done or requeueAfter is a bug retrying cannot fix. */
function returnedOutcome(value: unknown, what: 'reconcile' | 'finalize' = 'reconcile'): Outcome {
  if (value === undefined) return done;
  const parsed = parseOutcome(value);
  if ('outcome' in parsed && (parsed.outcome.kind === 'done' || parsed.outcome.kind === 'requeueAfter')) return parsed.outcome;
  const problem = 'outcome' in parsed ? `an outcome of kind ${parsed.outcome.kind}` : parsed.problem;
  throw new TerminalError(`${what} returned ${JSON.stringify(value)} (${problem}); return done, requeueAfter(...), or nothing`);
}

/**
 * A finalize that keeps asking to look again is parked once the object has been deleting for longer than
 * the controller's `finalizeDeadline`: measured from `deletionTimestamp`, which every run reads afresh, so
 * the bound holds across workers and restarts with nothing kept anywhere.
 */
function checkFinalizeDeadline(deadline: string | number | undefined, object: StoredObject, now: number): void {
  const deadlineMs = durationOption(deadline, DEFAULT_FINALIZE_DEADLINE_MS);
  const since = new Date(object.metadata.deletionTimestamp ?? Number.NaN).getTime();
  if (Number.isNaN(since) || now - since <= deadlineMs) return;
  throw new TerminalError(
    `finalize has not finished ${formatDuration(now - since)} after deletion (finalizeDeadline ${formatDuration(deadlineMs)}); ` +
      'it runs again at the next resync or `conveyor parked retry`',
  );
}
