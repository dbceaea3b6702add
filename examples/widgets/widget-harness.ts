// A Widget world for tests, the demo and benchmarks: the API simulator with the Widget CRD, a private Redis, config, and helpers to create, enqueue and wait.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Config,
  type ConfigInput,
  createLogger,
  KubeApiClient,
  type KubeObject,
  keyOf,
  loadConfig,
  type ObjectKey,
  ReconcileQueue,
  type StoredObject,
  unlimitedBudget,
} from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { parse as parseYaml } from 'yaml';
import type { Widget } from './controller.ts';

export { waitFor } from '@conveyor/test/support/wait-for';

export const WIDGETS = { group: 'example.com', version: 'v1', plural: 'widgets' };
export const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };
const CRDS = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };

export const CONTROLLER_MODULE = new URL('./controller.ts', import.meta.url).pathname;

export interface WidgetWorld {
  sim: KubeSimulator;
  redis: RedisServer;
  /** A client outside the budget, as a user or kubectl would be. */
  client: KubeApiClient;
  /** Configuration pointing at this world (unique Redis prefix). */
  config: Config;
  queue: ReconcileQueue;
  /** Writes `config` (with the simulator's server and token) as YAML for child processes. */
  writeConfigFile(dir: string, extra?: ConfigInput): string;
  createWidgets(count: number, namespace?: string, finalizers?: string[]): Promise<ObjectKey[]>;
  enqueue(keys: readonly ObjectKey[]): Promise<void>;
  close(): Promise<void>;
}

function merge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object'
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Starts a simulator (Widget CRD created, namespace `default`) and a private Redis. */
export async function startWidgetWorld(settings: ConfigInput = {}): Promise<WidgetWorld> {
  const sim = await startKubeSimulator();
  const redis = await RedisServer.start();
  const client = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: unlimitedBudget });
  const crd = parseYaml(readFileSync(new URL('./widget-crd.yaml', import.meta.url), 'utf8')) as KubeObject & { metadata: { name: string } };
  await client.create(CRDS, crd);
  const namespaces = { group: '', version: 'v1', plural: 'namespaces' };
  if ((await client.find(keyOf(namespaces, { metadata: { name: 'default' } }))) === undefined) {
    await client.create(namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  }
  const tree = merge(
    {
      redis: { url: redis.url, prefix: `t${randomUUID().slice(0, 8)}` },
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'error' },
    },
    settings as Record<string, unknown>,
  );
  const config = loadConfig({ env: {}, overrides: flatten(tree) });
  const queue = new ReconcileQueue(
    { controller: 'widgets', redis: config.redis, queue: config.queue },
    { logger: createLogger({ level: 'silent' }) },
  );

  return {
    sim,
    redis,
    client,
    config,
    queue,
    writeConfigFile(dir, extra = {}) {
      const file = join(dir, `conveyor-${randomUUID().slice(0, 8)}.json`);
      // The simulator speaks plain HTTP; client-node only allows that with TLS verification off.
      const kube = { server: sim.url, token: sim.token, insecureSkipTlsVerify: true };
      const whole = merge(merge(tree, { kube }), extra as Record<string, unknown>);
      writeFileSync(file, JSON.stringify(whole, null, 2));
      return file;
    },
    async createWidgets(count, namespace = 'default', finalizers) {
      const keys: ObjectKey[] = [];
      const batch = 50;
      for (let start = 0; start < count; start += batch) {
        const created = await Promise.all(
          Array.from({ length: Math.min(batch, count - start) }, (_, j) =>
            client.create<Widget>(WIDGETS, {
              apiVersion: 'example.com/v1',
              kind: 'Widget',
              metadata: { name: `w-${start + j}`, namespace, ...(finalizers === undefined ? {} : { finalizers }) },
              spec: { color: (start + j) % 2 === 0 ? 'blue' : 'green', size: start + j },
            }),
          ),
        );
        keys.push(...created.map((w: StoredObject<Widget>) => keyOf(WIDGETS, w)));
      }
      return keys;
    },
    async enqueue(keys) {
      await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'event' as const })));
    },
    async close() {
      await queue.close();
      await sim.close();
      await redis.close();
    },
  };
}

/** `{ a: { b: 1 } }` → `{ 'a.b': 1 }`, the shape `loadConfig` overrides take. */
export function flatten(tree: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tree)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, path));
    else out[path] = v;
  }
  return out;
}

/** Polls `check` until it returns true, failing with `what` after `timeoutMs`. */
