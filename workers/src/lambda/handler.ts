// The Lambda entry point: the same request processing as a container worker, with clients built once per execution environment.
//
// Expected flow: decode the request (identity only) → on the first invoke of this environment, load
// config from the function's environment, build the Kubernetes client (API budget shared through
// Redis) and run the controller's `setup` → `processRequest` → return the Outcome as JSON for the
// dispatcher to apply, with the invocation's API request counts (telemetry) for the dispatcher to export.
// Guarantees: the handler returns an Outcome for every request it can read and never lets a reconcile
// outlive the function: the reconcile timeout is cut to the time Lambda has left, less a margin, so a
// slow reconcile comes back as a retried error rather than a killed function. A request it cannot
// read is terminal (retrying the same bytes cannot help). A failed cold start is retried on the next invoke.
import {
  type Config,
  type Controller,
  closeControllerDeps,
  closeRedisConnection,
  contextFromTraceparent,
  controllerResources,
  createKubeConfig,
  createLogger,
  createRedisConnection,
  errorMessage,
  fieldManagerOf,
  KubeApiClient,
  type Logger,
  loadConfig,
  type Outcome,
  OwnWriteRecorder,
  outcomeFromError,
  RedisApiBudget,
  type RedisConnection,
  uniqueControllers,
} from '@conveyor/shared';
import type { TracingHandle } from '@conveyor/shared/tracing-sdk';
import type { KubeConfig } from '@kubernetes/client-node';
import { context as otelContext } from '@opentelemetry/api';
import { type EventRecorder, eventRecorderFor } from '../event-recorder.ts';
import { processRequest } from '../process-request.ts';
import { decodeLambdaRequest, type LambdaReply, TelemetryRecorder } from './lambda-request.ts';

/** The part of Lambda's context object the handler uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

export interface LambdaHandlerOptions {
  /** @defaultValue process.env (the function's environment) */
  env?: NodeJS.ProcessEnv;
  kubeConfig?: KubeConfig;
  logger?: Logger;
}

interface Runtime {
  config: Config;
  client: KubeApiClient;
  ownWrites: OwnWriteRecorder;
  events: EventRecorder;
  logger: Logger;
  deps: unknown;
  connection: RedisConnection;
  /** The SDK this environment set up, when the function's OTEL_* variables ask for traces. */
  tracing: TracingHandle | undefined;
}

/** Set up once per execution environment (the SDK is global), on the first cold start that asks for it. */
let tracingSetUp: Promise<TracingHandle | undefined> | undefined;

/** Time kept back from Lambda's deadline to return the outcome. */
const DEADLINE_MARGIN_MS = 1_000;

export type ReconcileHandler = ((event: unknown, context?: LambdaContext) => Promise<LambdaReply>) & {
  /** Closes the clients of this environment (tests and local runs; Lambda freezes environments instead). */
  close(): Promise<void>;
};

/**
 * The handler of one function serving one controller, or several (an array, as a module may export them): each
 * request names the controller whose queue it came from, and goes to that controller's reconcile, with its own client
 * (field manager), deps and own-write records. A request naming a controller the function does not serve is terminal
 * (parked with the reason: the dispatcher and the function disagree, which no retry fixes).
 */
export function lambdaHandler(
  // biome-ignore lint/suspicious/noExplicitAny: a handler accepts controllers of any resource type
  controllers: Controller<any, any> | readonly Controller<any, any>[],
  options: LambdaHandlerOptions = {},
): ReconcileHandler {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const list: readonly Controller<any, any>[] = Array.isArray(controllers) ? controllers : [controllers as Controller<any, any>];
  const handlers = new Map(uniqueControllers(list).map((c) => [c.name, controllerHandler(c, options)]));
  const served = [...handlers.keys()].join(', ');
  const handler = async (event: unknown, context?: LambdaContext): Promise<LambdaReply> => {
    const named = (event as { controller?: unknown } | null)?.controller;
    // A request without a name (a dispatcher that predates several controllers) is its only controller's.
    const target = named === undefined && handlers.size === 1 ? [...handlers.values()][0] : handlers.get(String(named));
    if (target === undefined) {
      const message =
        named === undefined
          ? `controller: missing; this function serves ${served}`
          : `controller: "${String(named)}" is not served here (${served})`;
      return { kind: 'terminal', code: 'PAYLOAD_INVALID', message };
    }
    return await target(event, context);
  };
  return Object.assign(handler, {
    async close() {
      await Promise.all([...handlers.values()].map((h) => h.close()));
    },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: a handler accepts a controller of any resource type
function controllerHandler(controller: Controller<any, any>, options: LambdaHandlerOptions): ReconcileHandler {
  let runtime: Promise<Runtime> | undefined;

  const start = async (): Promise<Runtime> => {
    const config = loadConfig({ env: options.env ?? process.env });
    const logger = (options.logger ?? createLogger({ level: config.log.level, name: 'lambda' })).child({ controller: controller.name });
    const kubeConfig = options.kubeConfig ?? createKubeConfig(config.kube);
    const connection = createRedisConnection(config.redis, { logger });
    try {
      tracingSetUp ??= config.tracing.enabled
        ? import('@conveyor/shared/tracing-sdk').then((sdk) => sdk.setupTracing(config.tracing, 'conveyor-lambda'))
        : Promise.resolve(undefined);
      const tracing = await tracingSetUp;
      const client = new KubeApiClient({
        kubeConfig,
        budget: RedisApiBudget.fromConfig(connection, config),
        fieldManager: fieldManagerOf(controller.name),
        resources: controllerResources(controller),
      });
      const deps = controller.setup === undefined ? undefined : await controller.setup({ config, logger });
      logger.info('execution environment ready');
      const ownWrites = new OwnWriteRecorder(connection, {
        prefix: config.redis.prefix,
        controller: controller.name,
        partitions: config.queue.partitions,
      });
      const events = eventRecorderFor(connection, config, controller.name);
      return { config, client, ownWrites, events, logger, deps, connection, tracing };
    } catch (error) {
      connection.disconnect();
      throw error;
    }
  };

  const handler = async (event: unknown, context?: LambdaContext): Promise<LambdaReply> => {
    let request: ReturnType<typeof decodeLambdaRequest>;
    try {
      request = decodeLambdaRequest(event);
    } catch (error) {
      return { kind: 'terminal', code: 'PAYLOAD_INVALID', message: errorMessage(error) };
    }
    if (runtime === undefined) {
      runtime = start();
      runtime.catch(() => {
        runtime = undefined;
      });
    }
    let rt: Runtime;
    try {
      rt = await runtime;
    } catch (error) {
      return outcomeFromError(error);
    }
    const left = context === undefined ? Number.POSITIVE_INFINITY : context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
    // The writes happen here, in the function: they are recorded here, fenced by the dispatcher's job lock.
    const fence =
      request.jobId === undefined || request.lockToken === undefined ? undefined : { jobId: request.jobId, token: request.lockToken };
    const telemetry = new TelemetryRecorder();
    // The dispatcher's invoke span is the parent: one trace from the watch event into this function's API calls.
    const outcome: Outcome = await otelContext.with(contextFromTraceparent(request.trace), () =>
      processRequest(controller, request, {
        client: rt.client
          .withWrites(rt.ownWrites.forRun(fence))
          .observed((verb, code, waitedMs) => telemetry.request(verb, code, waitedMs)),
        logger: rt.logger,
        deps: rt.deps,
        reconcileTimeoutMs: Math.max(1, Math.min(rt.config.worker.reconcileTimeout, left)),
        finalizeTimeoutMs: Math.max(1, Math.min(rt.config.worker.finalizeTimeout, left)),
        onPanic: () => telemetry.panicked(),
        events: rt.events,
        attempts: rt.config.queue.attempts,
      }),
    );
    // Lambda freezes the environment once the handler returns: spans not sent by then may never be.
    await rt.tracing?.flush().catch((error: unknown) => rt.logger.warn({ err: errorMessage(error) }, 'could not export the trace'));
    return { ...outcome, telemetry: telemetry.toJSON() };
  };

  return Object.assign(handler, {
    async close() {
      const current = runtime;
      runtime = undefined;
      if (current === undefined) return;
      const rt = await current.catch(() => undefined);
      if (rt === undefined) return;
      await closeControllerDeps(rt.deps, (error) => rt.logger.warn({ err: errorMessage(error) }, 'closing the controller’s deps failed'));
      await closeRedisConnection(rt.connection);
    },
  });
}
