// A controller running against the Kubernetes API simulator and a private Redis, in this process: kube-conveyor/testing's
// answer to controller-runtime's envtest, for a controller's own tests.
//
// Expected flow: startTestEnv starts the simulator, creates the CRDs it is given and the `default` namespace,
// starts a private redis-server, then the watcher and a container worker for the controller (or controllers), exactly as
// `conveyor watch` and `conveyor worker` would run them. The test writes objects with `env.client` and waits
// for what the controller does with `env.waitFor`. close() stops everything in the reverse order.
// Needs `redis-server` on PATH (or REDIS_SERVER_BINARY), as Conveyor's own tests do.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Config, type Controller, createLogger, KubeApiClient, type KubeObject, loadConfig, unlimitedBudget } from '@conveyor/shared';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import { startContainerWorker } from '@conveyor/workers/container-worker';
import { startWorkerSet } from '@conveyor/workers/worker-set';
import { parseAllDocuments } from 'yaml';
import { RedisServer } from './redis-server.ts';
import { type KubeSimulator, startKubeSimulator } from './sim/simulator.ts';
import { waitFor } from './wait-for.ts';

const CRDS = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
const NAMESPACES = { group: '', version: 'v1', plural: 'namespaces' };

export interface TestEnvOptions {
  /** The controller, or several: one watcher and one worker process then serve them all, as `--controller a --controller b` would. */
  // biome-ignore lint/suspicious/noExplicitAny: a controller of any resource and deps type is welcome here.
  controller: Controller<any, any> | readonly Controller<any, any>[];
  /** YAML files of CustomResourceDefinitions (several documents per file are fine) to create first. */
  crds?: readonly (string | URL)[];
  /** Settings as `conveyor.yaml` would hold them, in dotted form (`{ 'worker.concurrency': 4 }`); Redis, HTTP and logging are set for you. */
  settings?: Record<string, unknown>;
  /** Log level of the watcher and worker. @defaultValue 'warn' (CONVEYOR_TEST_LOG overrides it) */
  logLevel?: Config['log']['level'];
}

export interface TestEnv {
  /** A client with the simulator's admin token and no API budget, as kubectl would be. */
  client: KubeApiClient;
  sim: KubeSimulator;
  redis: RedisServer;
  /** The configuration the watcher and the worker run with. */
  config: Config;
  /** Resolves once `check` returns true; rejects after `timeoutMs` naming `what`. */
  waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts the simulator, a private Redis, the controller's watcher and a worker; see the file header for the flow. */
export async function startTestEnv(options: TestEnvOptions): Promise<TestEnv> {
  const sim = await startKubeSimulator();
  const redis = await RedisServer.start().catch(async (error: unknown) => {
    await sim.close();
    throw error;
  });
  const client = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: unlimitedBudget });
  const level = options.logLevel ?? (process.env.CONVEYOR_TEST_LOG as Config['log']['level'] | undefined) ?? 'warn';
  const logger = createLogger({ level });
  const config = loadConfig({
    env: {},
    overrides: {
      // Short retries: a test should see a failing reconcile come round again in well under a second.
      'queue.backoff.base': '50ms',
      'queue.backoff.max': '2s',
      ...options.settings,
      'redis.url': redis.url,
      'redis.prefix': `test-${randomUUID().slice(0, 8)}`,
      'http.host': '127.0.0.1',
      'http.port': 0,
      'log.level': level,
    },
  });
  let watcher: WatcherHandle | undefined;
  let worker: { close(graceMs?: number): Promise<void> } | undefined;
  const close = async () => {
    await worker?.close(1_000);
    await watcher?.close();
    await sim.close();
    await redis.close();
  };
  try {
    await prepareCluster(client, options.crds ?? []);
    watcher = await runWatcher({ controller: options.controller, config, logger, kubeConfig: sim.kubeConfig() });
    await watcher.ready;
    const controllers = Array.isArray(options.controller) ? options.controller : [options.controller];
    worker =
      controllers.length === 1
        ? await startContainerWorker({ controller: controllers[0], config, kubeConfig: sim.kubeConfig(), logger, http: false })
        : await startWorkerSet({
            names: controllers.map((c: Controller<KubeObject, unknown>) => c.name),
            config,
            logger,
            http: false,
            start: (name, own) =>
              startContainerWorker({
                controller: controllers.find((c: Controller<KubeObject, unknown>) => c.name === name),
                config: own,
                kubeConfig: sim.kubeConfig(),
                logger,
                http: false,
              }),
          });
  } catch (error) {
    await close();
    throw error;
  }
  return { client, sim, redis, config, waitFor: (what, check, timeoutMs = 30_000) => waitFor(what, check, timeoutMs, 20), close };
}

async function prepareCluster(client: KubeApiClient, crdFiles: readonly (string | URL)[]): Promise<void> {
  for (const file of crdFiles) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const crd = doc.toJSON() as (KubeObject & { metadata: { name: string } }) | null;
      if (crd !== null) await client.create(CRDS, crd);
    }
  }
  if ((await client.find({ ...NAMESPACES, namespace: '', name: 'default' })) === undefined) {
    await client.create(NAMESPACES, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  }
}
