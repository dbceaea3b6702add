// What the autoscaler turns: a Deployment's `scale` subresource (container workers) or the dispatcher's concurrency (Lambda).

import { type Config, publishDesiredWorkers, type RedisConnection } from '@conveyor/shared';
import { AppsV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

export interface ScaleTarget {
  /** What is running now (replicas ready, or the slots last published). */
  current(): Promise<number>;
  apply(desired: number): Promise<void>;
  describe(): string;
}

/** Container workers: GET and PATCH `deployments/<name>/scale`, as `kubectl scale` and the HPA do. */
export class DeploymentScaleTarget implements ScaleTarget {
  private readonly apps: AppsV1Api;
  private readonly namespace: string;
  private readonly name: string;

  constructor(kc: KubeConfig, deployment: string) {
    const [namespace, name] = deployment.split('/') as [string, string];
    this.apps = kc.makeApiClient(AppsV1Api);
    this.namespace = namespace;
    this.name = name;
  }

  async current(): Promise<number> {
    const scale = await this.apps.readNamespacedDeploymentScale({ name: this.name, namespace: this.namespace });
    return scale.status?.replicas ?? scale.spec?.replicas ?? 0;
  }

  async apply(desired: number): Promise<void> {
    await this.apps.patchNamespacedDeploymentScale(
      { name: this.name, namespace: this.namespace, body: { spec: { replicas: desired } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  describe(): string {
    return `deployment ${this.namespace}/${this.name}`;
  }
}

/** Lambda: the desired count is published in Redis; every dispatcher of the controller follows it. */
export class DispatcherConcurrencyTarget implements ScaleTarget {
  private readonly connection: RedisConnection;
  private readonly redis: Config['redis'];
  private readonly controller: string;
  private readonly ttlMs: number;
  private last = 0;

  constructor(connection: RedisConnection, redis: Config['redis'], controller: string, intervalMs: number) {
    this.connection = connection;
    this.redis = redis;
    this.controller = controller;
    // Outlives a few missed intervals; a dead autoscaler stops steering rather than pinning a stale count.
    this.ttlMs = intervalMs * 4;
  }

  async current(): Promise<number> {
    return this.last;
  }

  async apply(desired: number): Promise<void> {
    await publishDesiredWorkers(this.connection, this.redis, this.controller, desired, this.ttlMs);
    this.last = desired;
  }

  describe(): string {
    return `dispatcher concurrency of ${this.controller}`;
  }
}
