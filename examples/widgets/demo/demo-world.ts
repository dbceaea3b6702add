// Where the demo runs: a private Redis plus the API simulator (reusing the Widget world), or a real cluster from a kubeconfig.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type Config,
  type ConfigInput,
  createLogger,
  KubeApiClient,
  type KubeObject,
  keyOf,
  loadConfig,
  ReconcileQueue,
  unlimitedBudget,
} from '@conveyor/shared';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { flatten, startWidgetWorld } from '../widget-harness.ts';

export interface DemoWorld {
  kubeConfig: KubeConfig;
  /** A client outside the API budget: the demo's own writes stand for users and other tools. */
  client: KubeApiClient;
  config: Config;
  queue: ReconcileQueue;
  namespace: string;
  /** Where the Widgets live, for the summary. */
  describe: string;
  /** What a Lambda function needs to reach this API server, when it can (the simulator). */
  lambdaKube: { server: string; token: string } | undefined;
  close(): Promise<void>;
}

const CRDS = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
const NAMESPACES = { group: '', version: 'v1', plural: 'namespaces' };

/** The simulator with the Widget CRD and a private Redis (the Widget world of the tests). */
export async function startSimulatedWorld(settings: ConfigInput): Promise<DemoWorld> {
  const world = await startWidgetWorld(settings);
  const kubeConfig = world.sim.kubeConfig();
  return {
    kubeConfig,
    client: world.client,
    config: world.config,
    queue: world.queue,
    namespace: 'default',
    describe: `API simulator at ${world.sim.url}`,
    lambdaKube: { server: world.sim.url, token: world.sim.token },
    close: () => world.close(),
  };
}

/**
 * A real cluster: a private Redis here, the Widget CRD created when missing, and the Widgets in a
 * namespace of their own (`conveyor-demo-<random>`), deleted again at the end.
 */
export async function startClusterWorld(kubeconfigPath: string, settings: ConfigInput): Promise<DemoWorld> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const client = new KubeApiClient({ kubeConfig, budget: unlimitedBudget });
  const crd = parseYaml(readFileSync(new URL('../widget-crd.yaml', import.meta.url), 'utf8')) as KubeObject & {
    metadata: { name: string };
  };
  if ((await client.find(keyOf(CRDS, crd))) === undefined) await client.create(CRDS, crd);
  const namespace = `conveyor-demo-${randomUUID().slice(0, 6)}`;
  await client.create(NAMESPACES, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  const redis = await RedisServer.start();
  try {
    const config = loadConfig({
      env: {},
      overrides: flatten({
        ...settings,
        redis: { url: redis.url, prefix: 'demo' },
        kube: { kubeconfig: kubeconfigPath },
      }),
    });
    const queue = new ReconcileQueue(
      { controller: 'widgets', redis: config.redis, queue: config.queue },
      { logger: createLogger({ level: 'silent' }) },
    );
    return {
      kubeConfig,
      client,
      config,
      queue,
      namespace,
      describe: `cluster ${kubeConfig.getCurrentCluster()?.server ?? '?'}, namespace ${namespace}`,
      lambdaKube: undefined,
      async close() {
        await queue.close();
        await client.delete(keyOf(NAMESPACES, { metadata: { name: namespace } })).catch(() => false);
        await redis.close();
      },
    };
  } catch (error) {
    await redis.close();
    throw error;
  }
}
