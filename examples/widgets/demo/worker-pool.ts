// The demo's container workers: in-process `startContainerWorker` instances that an autoscaler sizes, standing in for a Deployment's pods.
import { type Config, errorMessage, type Logger } from '@conveyor/shared';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import type { KubeConfig } from '@kubernetes/client-node';
import widgets from '../controller.ts';

/** controller-runtime's reconcile counter, read from each worker's registry. */
const RECONCILE_TOTAL = 'controller_runtime_reconcile_total';

export interface ReconcileCounts {
  total: number;
  errors: number;
}

/**
 * A local pool of container workers. Scaling up starts workers (each runs `config.worker.concurrency`
 * reconciles at once); scaling down closes the newest ones gracefully, as a Deployment scale-down
 * sends SIGTERM. Counts of closed workers are kept so totals never go backwards.
 */
export class LocalWorkerPool {
  private readonly workers: ContainerWorker[] = [];
  private readonly config: Config;
  private readonly kubeConfig: KubeConfig;
  private readonly logger: Logger;
  private retired: ReconcileCounts = { total: 0, errors: 0 };
  private desired = 0;
  private changing: Promise<void> = Promise.resolve();

  constructor(config: Config, kubeConfig: KubeConfig, logger: Logger) {
    this.config = config;
    this.kubeConfig = kubeConfig;
    this.logger = logger;
  }

  /** Workers running now. */
  get size(): number {
    return this.workers.length;
  }

  async current(): Promise<number> {
    return this.desired;
  }

  describe(): string {
    return 'local container workers';
  }

  /** Starts or stops workers until `desired` run; calls are applied one after another. */
  apply(desired: number): Promise<void> {
    this.desired = desired;
    this.changing = this.changing
      .then(() => this.resize())
      .catch((error: unknown) => {
        this.logger.warn({ err: errorMessage(error) }, 'resizing the worker pool failed; the next decision tries again');
      });
    return this.changing;
  }

  /** Reconciles run so far by every worker, running or closed. */
  async counts(): Promise<ReconcileCounts> {
    const live = await Promise.all(this.workers.map((w) => countsOf(w)));
    return live.reduce((sum, c) => ({ total: sum.total + c.total, errors: sum.errors + c.errors }), this.retired);
  }

  async close(): Promise<void> {
    this.desired = 0;
    await this.changing;
    await this.resize();
  }

  private async resize(): Promise<void> {
    while (this.workers.length < this.desired) {
      this.workers.push(
        await startContainerWorker({
          controller: widgets,
          config: this.config,
          kubeConfig: this.kubeConfig,
          logger: this.logger,
          http: false,
        }),
      );
    }
    while (this.workers.length > this.desired) {
      const worker = this.workers.pop();
      if (worker === undefined) break;
      const last = await countsOf(worker);
      await worker.close(this.config.worker.shutdownGrace);
      // Reconciles that finished during the grace period count too.
      const final = await countsOf(worker).catch(() => last);
      this.retired = { total: this.retired.total + final.total, errors: this.retired.errors + final.errors };
    }
  }
}

async function countsOf(worker: { registry: ContainerWorker['registry'] }): Promise<ReconcileCounts> {
  const metric = await worker.registry.getSingleMetric(RECONCILE_TOTAL)?.get();
  let total = 0;
  let errors = 0;
  for (const v of metric?.values ?? []) {
    total += v.value;
    if (v.labels.result === 'error') errors += v.value;
  }
  return { total, errors };
}

export { countsOf as reconcileCountsOf };
