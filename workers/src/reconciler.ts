// The reconcile side of a controller definition: what `reconcile` and `finalize` receive, and `defineController` typed end to end.
import {
  type Config,
  type ControllerSpec,
  InvalidArgumentError,
  type KubeClient,
  type KubeObject,
  type Logger,
  type ObjectKey,
  type Outcome,
  type ResourceRef,
  type StoredObject,
  type TerminalError,
  validateControllerSpec,
} from '@conveyor/shared';

export type StatusOf<T> = T extends { status?: infer S } ? NonNullable<S> : Record<string, unknown>;
/** A JSON merge patch of `status`: listed fields replace (objects merge), `null` deletes. */
export type StatusPatch<T> = { [K in keyof StatusOf<T>]?: StatusOf<T>[K] | null };

/** What one run of `reconcile` or `finalize` gets besides the object. */
export interface ReconcileContext<T extends KubeObject = KubeObject, D = undefined> {
  /** Kubernetes client; every call draws from the cluster-wide API budget. */
  client: KubeClient;
  /** Child logger carrying reconcileId, key and attempt. */
  log: Logger;
  key: ObjectKey;
  /** 1 on the first try of a request, higher on retries. */
  attempt: number;
  reconcileId: string;
  /** Why the request was made: event, manual or resync. */
  reason: string;
  /** Aborted when the run passed its timeout: stop, the retry does the work. */
  signal: AbortSignal;
  /**
   * Collects a status change. All collected changes are written once after `reconcile` returns
   * (or throws), guarded by the resourceVersion read, and not at all when they change nothing.
   * Ignored during `finalize`.
   */
  patchStatus(patch: StatusPatch<T>): void;
  /** What the controller's `setup` returned. */
  deps: D;
  /** Outcome helpers (also exported by @conveyor/workers): return `ctx.done` or `ctx.requeueAfter('30s')`. */
  done: Outcome;
  requeueAfter: (delay: string | number) => Outcome;
  /** Throw `new ctx.TerminalError(reason)` when retrying cannot help: counted and parked, not retried. */
  TerminalError: typeof TerminalError;
}

export interface SetupEnvironment {
  config: Config;
  logger: Logger;
}

/** The reconcile side; it runs in container workers and in Lambda. */
export interface ControllerHandlers<T extends KubeObject, D> {
  /** Runs once per process (or Lambda cold start); its result is `ctx.deps`. A `close()` on it runs at shutdown. */
  setup?: (env: SetupEnvironment) => D | Promise<D>;
  /** Level-based: look at the object as it is now and make the world match. Returns an outcome, or nothing for done. */
  reconcile: (object: StoredObject<T>, ctx: ReconcileContext<T, D>) => Promise<Outcome | undefined> | Outcome | undefined;
  /** Idempotent cleanup of what lives outside Kubernetes; our finalizer is removed once it resolves. */
  finalize?: (object: StoredObject<T>, ctx: ReconcileContext<T, D>) => Promise<void> | void;
}

export type ControllerDefinition<T extends KubeObject = KubeObject, D = undefined> = ControllerSpec<T> & ControllerHandlers<T, D>;

/** A checked definition; also a valid ControllerSpec for the watcher. */
export type Controller<T extends KubeObject = KubeObject, D = undefined> = Readonly<ControllerDefinition<T, D>> & {
  /** The `for` resource as object keys name it. */
  readonly ref: ResourceRef;
};

/**
 * Checks a controller definition and returns it typed: the resource type `T` (given, or inferred
 * from `reconcile`'s parameter) flows into `reconcile`, `finalize` and `ctx.patchStatus`; `D` is
 * what `setup` returns. Throws InvalidArgumentError naming every problem.
 */
export function defineController<T extends KubeObject = KubeObject, D = undefined>(
  definition: ControllerDefinition<T, D>,
): Controller<T, D> {
  return checkController(definition) as unknown as Controller<T, D>;
}

/** Validates what a controller module exported (both sides of it), naming every problem. */
export function checkController(value: unknown): Controller<KubeObject, unknown> {
  const problems: string[] = [];
  let spec: ControllerSpec | undefined;
  try {
    spec = validateControllerSpec(value);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    problems.push(error.message.replace(/^invalid controller definition:\s*/, ''));
  }
  const handlers = (value ?? {}) as Partial<ControllerHandlers<KubeObject, unknown>> & { finalizer?: unknown };
  if (typeof handlers.reconcile !== 'function') problems.push('reconcile: must be a function (object, ctx) => outcome');
  if (handlers.finalize !== undefined && typeof handlers.finalize !== 'function') problems.push('finalize: must be a function');
  if (handlers.setup !== undefined && typeof handlers.setup !== 'function') problems.push('setup: must be a function');
  if (handlers.finalizer !== undefined && handlers.finalize === undefined) {
    problems.push('finalize: missing, but finalizer is set; nothing would ever remove the finalizer');
  }
  if (handlers.finalizer === undefined && handlers.finalize !== undefined) {
    problems.push('finalizer: missing, but finalize is set; without a finalizer it would never run');
  }
  if (problems.length > 0 || spec === undefined)
    throw new InvalidArgumentError(`invalid controller definition:\n  ${problems.join('\n  ')}`);
  const ref = { group: spec.for.group, version: spec.for.version, resource: spec.for.plural };
  return Object.freeze({ ...(value as ControllerDefinition<KubeObject, unknown>), ref });
}
