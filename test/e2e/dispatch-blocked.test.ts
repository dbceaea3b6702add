// `conveyor dispatch` without AWS credentials, as a user meets it: the queue pauses and says why (log, status, metric), no request spends its attempts, and once the credentials are there everything runs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ConfigInput, configSchema, ReconcileQueue } from '@conveyor/shared';
import { type ConveyorProcess, spawnConveyor } from '@conveyor/test/support/conveyor-process';
import { FakeLambda } from '@conveyor/test/support/fake-lambda';
import { widgetKey } from '@conveyor/test/support/queue-fixtures';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { CONTROLLER_MODULE, waitFor } from '../../examples/widgets/widget-harness.ts';

describe('conveyor dispatch without AWS credentials', () => {
  let redis: RedisServer;
  let lambda: FakeLambda;
  let dir: string;
  let configFile: string;
  let queue: ReconcileQueue;
  const started: ConveyorProcess[] = [];

  before(async () => {
    redis = await RedisServer.start();
    lambda = await FakeLambda.start(() => ({ kind: 'result', body: { kind: 'done' } }));
    dir = mkdtempSync(join(tmpdir(), 'conveyor-blocked-'));
    const config: ConfigInput = {
      controller: CONTROLLER_MODULE,
      redis: { url: redis.url, prefix: 'blocked' },
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'info' },
      // Two attempts per request: had the credential failures spent them, everything would be parked at once.
      queue: { attempts: 2, blockedPause: '1s', backoff: { base: '50ms', max: '200ms' } },
      worker: { concurrency: 1, shutdownGrace: '5s' },
      lambda: { functionName: 'reconcile', endpoint: lambda.endpoint, region: 'us-east-1' },
    };
    configFile = join(dir, 'conveyor.json');
    writeFileSync(configFile, JSON.stringify(config));
    const parsed = configSchema.parse(config);
    queue = new ReconcileQueue({ controller: 'widgets', redis: parsed.redis, queue: parsed.queue });
  });
  after(async () => {
    for (const p of started) p.kill();
    await queue?.close();
    await lambda?.close();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A dispatcher whose only AWS credentials are `credentials` (none: an empty home, no instance metadata). */
  async function dispatch(credentials: Record<string, string>): Promise<{ p: ConveyorProcess; url: string }> {
    const p = spawnConveyor(['dispatch', '--config', configFile], {
      env: {
        HOME: dir,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
        ...credentials,
      },
    });
    started.push(p);
    const url = (await p.waitForOutput(/"url":"(http:\/\/[^"]+)"/))[1] as string;
    return { p, url };
  }

  const metric = async (url: string, series: RegExp): Promise<number | undefined> => {
    const body = await (await fetch(`${url}/metrics`)).text();
    const line = body.split('\n').find((l) => series.test(l));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };

  it('pauses the queue and says so instead of spending every request’s attempts, and runs everything once fixed', async () => {
    const keys = ['a', 'b', 'c', 'd', 'e'].map((name) => widgetKey(name));
    await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'event' as const })));
    const { p, url } = await dispatch({});

    await p.waitForOutput(/"msg":"queue paused: no request can succeed until this is fixed \(AWS_CREDENTIALS_MISSING\)/);
    // Each paused try is one failed reconcile; more of them than `attempts` allows one request.
    await waitFor('four paused tries', async () => ((await metric(url, /^controller_runtime_reconcile_errors_total\{/)) ?? 0) >= 4, 30_000);
    assert.equal(await metric(url, /^conveyor_queue_blocked\{controller="widgets"\}/), 1);

    const status = spawnConveyor(['status', '--config', configFile, '--json']);
    started.push(status);
    assert.equal((await status.exited).code, 0, status.output());
    const report = JSON.parse(status.stdout()) as {
      blocked: { code: string; message: string } | null;
      depth: { parked: number; waiting: number; prioritized: number; active: number };
    };
    assert.equal(report.blocked?.code, 'AWS_CREDENTIALS_MISSING');
    assert.match(report.blocked?.message ?? '', /Could not load credentials/);
    assert.equal(report.depth.parked, 0, 'nothing parked');
    assert.equal(report.depth.waiting + report.depth.prioritized + report.depth.active, 5, 'every request still queued');
    assert.equal(lambda.invocations.length, 0, 'nothing reached Lambda');
    assert.equal(p.output().match(/queue paused: no request can succeed/g)?.length, 1, 'said once, not once per request');
    assert.equal((await p.stop('SIGTERM')).code, 0);

    // The operator fixes the configuration (here: gives credentials) and restarts; the next try after the pause succeeds.
    const fixed = await dispatch({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' });
    await waitFor('every request reconciled through Lambda', async () => {
      const d = await queue.getDepth();
      return lambda.invocations.length >= 5 && d.waiting + d.prioritized + d.active + d.delayedDue + d.delayedLater === 0;
    });
    assert.equal((await queue.getDepth()).parked, 0);
    await waitFor('the pause note gone', async () => (await queue.getBlocked()) === undefined, 10_000);
    assert.equal(await metric(fixed.url, /^conveyor_queue_blocked\{controller="widgets"\}/), 0);
    assert.equal((await fixed.p.stop('SIGTERM')).code, 0);
  });
});
