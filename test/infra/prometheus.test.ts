// infra/monitoring against a real Prometheus: it scrapes a watcher, two container workers and a Lambda dispatcher under churn, and every
// query of the Grafana dashboard and of the generated KEDA ScaledObject returns a series; the alerting rules pass promtool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createLogger, KubeApiClient, unlimitedBudget } from '@conveyor/shared';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import { type Dispatcher, startDispatcher } from '@conveyor/workers/lambda/dispatcher';
import { parse as parseYaml } from 'yaml';
import widgets, { type Widget } from '../../examples/widgets/controller.ts';
import { startWidgetWorld, type WidgetWorld } from '../../examples/widgets/widget-harness.ts';
import { FakeLambda } from '../support/fake-lambda.ts';
import { PrometheusServer, prometheusMissing } from '../support/prometheus-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { repoRoot } from '../support/widget-build.ts';

const monitoring = `${repoRoot}infra/monitoring/`;

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd: monitoring, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Every PromQL query a user's Grafana and KEDA run against these metrics, with where it comes from. */
function shippedQueries(controller: string): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(`${monitoring}conveyor-dashboard.json`, 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
    templating: { list: { name: string; query?: string }[] };
  };
  // Grafana substitutes $controller (a regex of the chosen values); label_values() is Grafana's, not PromQL: its series are the query.
  const substitute = (expr: string) => expr.replaceAll('$controller', controller);
  const queries = dashboard.panels.flatMap((panel) =>
    panel.targets.map((target) => ({ where: `dashboard panel "${panel.title}"`, expr: substitute(target.expr) })),
  );
  for (const variable of dashboard.templating.list) {
    const labelValues = /^label_values\((\w+), (\w+)\)$/.exec(variable.query ?? '');
    if (labelValues !== null)
      queries.push({ where: `dashboard variable $${variable.name}`, expr: `count by (${labelValues[2]}) (${labelValues[1]})` });
  }
  const scaledObject = parseYaml(readFileSync(`${repoRoot}infra/components/keda/scaledobject.yaml`, 'utf8')) as {
    spec: { triggers: { type: string; metadata: { query: string } }[] };
  };
  for (const trigger of scaledObject.spec.triggers) {
    if (trigger.type === 'prometheus') queries.push({ where: 'KEDA ScaledObject trigger', expr: trigger.metadata.query });
  }
  return queries;
}

describe('infra/monitoring alerting rules', () => {
  it('ship as a PrometheusRule whose groups are those of conveyor-alerts.rules.yaml', () => {
    const rules = parseYaml(readFileSync(`${monitoring}conveyor-alerts.rules.yaml`, 'utf8')) as { groups: unknown[] };
    const resource = parseYaml(readFileSync(`${monitoring}prometheus-rule.yaml`, 'utf8')) as { kind: string; spec: { groups: unknown[] } };
    assert.equal(resource.kind, 'PrometheusRule');
    assert.deepEqual(resource.spec.groups, rules.groups);
    const kustomization = readFileSync(`${monitoring}kustomization.yaml`, 'utf8');
    assert.match(kustomization, /- prometheus-rule\.yaml/);
  });

  it('pass promtool check rules and their unit tests (promtool test rules)', { skip: prometheusMissing }, () => {
    const check = promtool('check', 'rules', 'conveyor-alerts.rules.yaml');
    assert.equal(check.status, 0, check.output);
    for (const alert of ['ConveyorQueueNotDraining', 'ConveyorRequestsParked', 'ConveyorApiBudgetExhausted', 'ConveyorWatcherNotReady']) {
      assert.match(readFileSync(`${monitoring}conveyor-alerts.rules.yaml`, 'utf8'), new RegExp(`alert: ${alert}\\n`));
    }
    const unit = promtool('test', 'rules', 'conveyor-alerts.test.yaml');
    assert.equal(unit.status, 0, unit.output);
  });
});

describe('a real Prometheus scraping a watcher, two workers and a dispatcher under churn', { skip: prometheusMissing }, () => {
  let world: WidgetWorld;
  let watcher: WatcherHandle | undefined;
  const workers: ContainerWorker[] = [];
  let dispatcher: Dispatcher | undefined;
  let lambda: FakeLambda | undefined;
  let prometheus: PrometheusServer | undefined;

  before(async () => {
    world = await startWidgetWorld({
      queue: { attempts: 3, backoff: { base: '50ms', max: '500ms' } },
      autoscaler: { interval: '500ms' },
      worker: { concurrency: 4 },
    });
    const kubeConfig = world.sim.kubeConfig();
    const logger = createLogger({ level: 'silent' });
    watcher = await runWatcher({ controller: widgets, config: world.config, logger, kubeConfig });
    for (let i = 0; i < 2; i++) workers.push(await startContainerWorker({ controller: widgets, config: world.config, kubeConfig, logger }));
    // A function that reports its API requests with its outcome, as lambdaHandler does.
    const telemetry = { api: [{ verb: 'get', code: '2xx', count: 1 }], budgetWaitMs: [0], panicked: false };
    lambda = await FakeLambda.start(() => ({ kind: 'result', body: { kind: 'done', telemetry } }));
    dispatcher = await startDispatcher({
      controller: widgets.name,
      functionName: 'reconcile',
      config: world.config,
      lambda: lambda.client(),
      logger,
      http: true,
    });
    const urls = [watcher.url, ...workers.map((w) => w.url), dispatcher.url];
    prometheus = await PrometheusServer.start(urls.map((url) => new URL(url ?? '').host));
  });

  after(async () => {
    await prometheus?.close();
    await dispatcher?.close(1_000);
    for (const worker of workers) await worker.close(1_000);
    await watcher?.close();
    await lambda?.close();
    await world?.close();
  });

  it('answers every query of the Grafana dashboard and of the KEDA ScaledObject with a series', async () => {
    const server = prometheus as PrometheusServer;
    await waitFor('every target scraped', async () => (await server.targets()).every((t) => t.health === 'up'), 30_000, 200);
    // Churn: creates, spec edits and deletes, with one apply in six failing so reconciles error, retry and some park.
    world.sim.faults.set({ serverErrors: { share: 1 / 6, verbs: ['patch'], resources: ['configmaps'] } });
    const client = new KubeApiClient({ kubeConfig: world.sim.kubeConfig(), budget: unlimitedBudget });
    const keys = await world.createWidgets(60);
    const deadline = Date.now() + 8_000;
    for (let round = 0; Date.now() < deadline; round++) {
      const key = keys[round % keys.length];
      if (key === undefined) break;
      if (round % 15 === 14) await client.delete(key);
      else await client.patch<Widget>(key, { type: 'merge', body: { spec: { size: 1_000 + round } } }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    world.sim.faults.reset();
    // Two scrapes after the last change, so every rate() has the samples it needs.
    await new Promise((resolve) => setTimeout(resolve, 2_500));

    const failures: string[] = [];
    for (const { where, expr } of shippedQueries(widgets.name)) {
      const samples = await server.query(expr);
      if (samples.length === 0) failures.push(`${where}: no series for ${expr}`);
      else if (!samples.some((s) => Number.isFinite(s.value))) failures.push(`${where}: only NaN for ${expr} (the metric never moved)`);
    }
    assert.deepEqual(failures, []);
    // The workers' own series moved, not just their zeros.
    const reconciles = await server.query('sum(controller_runtime_reconcile_total{controller="widgets"})');
    assert.ok((reconciles[0]?.value ?? 0) > 60, `reconciles: ${JSON.stringify(reconciles)}`);
    const adds = await server.query('sum(workqueue_adds_total{name="widgets"})');
    assert.ok((adds[0]?.value ?? 0) > 60, `adds: ${JSON.stringify(adds)}`);
    const applies = await server.query('sum(conveyor_api_requests_total{controller="widgets",verb="apply"})');
    assert.ok((applies[0]?.value ?? 0) > 0, 'apply requests counted by verb');
  });
});
