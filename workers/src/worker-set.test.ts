// Several controllers' dispatchers in one process, invoking one Lambda function: each request names its controller.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { configSchema, createLogger, ReconcileQueue } from '@conveyor/shared';
import { FakeLambda } from '@conveyor/test/support/fake-lambda';
import { waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { startDispatcher } from './lambda/dispatcher.ts';
import type { LambdaRequest } from './lambda/lambda-request.ts';
import { startWorkerSet } from './worker-set.ts';

describe('Function: startWorkerSet of two controllers’ dispatchers and one function', () => {
  let server: RedisServer;
  let lambda: FakeLambda;

  before(async () => {
    server = await RedisServer.start();
    lambda = await FakeLambda.start(() => ({ kind: 'result', body: { kind: 'done' } }));
  });
  after(async () => {
    await lambda?.close();
    await server?.close();
  });

  it('drains both queues through the one function, each request naming its controller, each controller with its own slots and series', async () => {
    const names = [`a-${randomUUID().slice(0, 6)}`, `b-${randomUUID().slice(0, 6)}`];
    const config = configSchema.parse({
      redis: { url: server.url },
      worker: { concurrency: 6 },
      http: { host: '127.0.0.1', port: 0 },
      controllers: { [names[0] as string]: { share: 2 } },
      lambda: { functionTimeout: '2s' },
    });
    const set = await startWorkerSet({
      names,
      config,
      logger: createLogger({ level: 'silent' }),
      start: (name, own) => startDispatcher({ controller: name, functionName: 'reconcile', config: own, lambda: lambda.client() }),
    });
    const queues = names.map((controller) => new ReconcileQueue({ controller, redis: config.redis, queue: config.queue }));
    try {
      assert.deepEqual(
        names.map((name) => set.members.get(name)?.concurrency),
        [4, 2],
      );
      for (const [index, queue] of queues.entries()) {
        await queue.enqueueBatch(Array.from({ length: 10 }, (_, i) => ({ key: widgetKey(`w-${index}-${i}`), reason: 'event' as const })));
      }
      await waitFor('20 invocations', () => lambda.invocations.length >= 20);
      const byController = new Map<string, string[]>();
      for (const { payload } of lambda.invocations) {
        const { controller, key } = payload as LambdaRequest;
        byController.set(controller ?? '', [...(byController.get(controller ?? '') ?? []), key]);
      }
      assert.deepEqual(
        names.map((name, index) => byController.get(name)?.every((key) => key.includes(`/w-${index}-`)) && byController.get(name)?.length),
        [10, 10],
      );
      const metrics = await (await fetch(`${set.url}/metrics`)).text();
      for (const name of names)
        assert.match(
          metrics,
          new RegExp(`^conveyor_lambda_invocations_total\\{controller="${name}",function="reconcile",result="ok"\\} 10$`, 'm'),
        );
      assert.equal((await fetch(`${set.url}/readyz`)).status, 200);
    } finally {
      await Promise.all(queues.map((q) => q.close()));
      await set.close(1_000);
    }
  });
});
