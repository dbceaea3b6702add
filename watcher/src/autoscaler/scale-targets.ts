// What the autoscaler turns: a Deployment's `scale` subresource (container workers) or the dispatcher's concurrency (Lambda).

import { type Config, type KubeClient, type ObjectKey, publishDesiredWorkers, type RedisConnection } from '@conveyor/shared';

export interface ScaleTarget {
  /** What is running now (replicas ready, or the slots last published). */
  current(): Promise<number>;
  apply(desired: number): Promise<void>;
  describe(): string;
}

/** autoscaling/v1 Scale, as the `scale` subresource answers. */
interface Scale {
  spec?: { replicas?: number };
  status?: { replicas?: number };
  [field: string]: unknown;
}

/** Container workers: GET and PATCH `deployments/<name>/scale`, as `kubectl scale` and the HPA do. */
export class DeploymentScaleTarget implements ScaleTarget {
  private readonly client: KubeClient;
  private readonly key: ObjectKey;

  constructor(client: KubeClient, deployment: string) {
    const [namespace, name] = deployment.split('/') as [string, string];
    this.client = client;
    this.key = { group: 'apps', version: 'v1', plural: 'deployments', namespace, name };
  }

  async current(): Promise<number> {
    const scale = await this.client.get<Scale>(this.key, { subresource: 'scale' });
    return scale.status?.replicas ?? scale.spec?.replicas ?? 0;
  }

  async apply(desired: number): Promise<void> {
    await this.client.patch(this.key, { type: 'merge', body: { spec: { replicas: desired } } }, { subresource: 'scale' });
  }

  describe(): string {
    return `deployment ${this.key.namespace}/${this.key.name}`;
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

/**
 * One Deployment sized by the autoscalers of several controllers its workers serve (each controller with its own
 * slots in every worker): it runs the most any of them wants. Each controller's view of "current" is what it last
 * asked for, so every controller states its want at least once and a later smaller want of one cannot undercut another's.
 */
export class SharedScaleTarget {
  private readonly inner: ScaleTarget;
  private readonly wants = new Map<string, number>();
  private applied: number | undefined;

  constructor(inner: ScaleTarget) {
    this.inner = inner;
  }

  forController(name: string): ScaleTarget {
    return {
      // Unknown until it asked: -1 makes its first decision always reach apply().
      current: async () => this.wants.get(name) ?? -1,
      apply: async (desired) => {
        this.wants.set(name, desired);
        const most = Math.max(...this.wants.values());
        if (most === this.applied) return;
        try {
          await this.inner.apply(most);
          this.applied = most;
        } catch (error) {
          this.wants.delete(name);
          this.applied = undefined;
          throw error;
        }
      },
      describe: () => `${this.inner.describe()} (for ${name}; it runs the most any controller wants)`,
    };
  }
}
