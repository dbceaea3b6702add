import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineController } from '@conveyor/shared';
import { lambdaHandler } from './handler.ts';

const named = (name: string) =>
  defineController({ name, for: { group: 'example.com', version: 'v1', plural: name }, reconcile: async () => undefined });
const request = (controller?: string) => ({
  v: 1,
  ...(controller === undefined ? {} : { controller }),
  key: 'example.com/v1/widgets/default/w-1',
  reason: 'event',
  enqueuedAt: 1,
  attempt: 1,
});

describe('Function: lambdaHandler of one function serving several controllers', () => {
  it('parks a request naming a controller the function does not serve, or naming none when it serves several', async () => {
    const handler = lambdaHandler([named('widgets'), named('gadgets')], { env: {} });
    try {
      const unknown = await handler(request('gizmos'));
      assert.deepEqual(unknown, {
        kind: 'terminal',
        code: 'PAYLOAD_INVALID',
        message: 'controller: "gizmos" is not served here (widgets, gadgets)',
      });
      const missing = await handler(request());
      assert.deepEqual(missing, {
        kind: 'terminal',
        code: 'PAYLOAD_INVALID',
        message: 'controller: missing; this function serves widgets, gadgets',
      });
    } finally {
      await handler.close();
    }
  });

  it('parks a request for another controller on a function serving one', async () => {
    const handler = lambdaHandler(named('widgets'), { env: {} });
    try {
      const other = await handler(request('gadgets'));
      assert.equal(other.kind, 'terminal');
    } finally {
      await handler.close();
    }
  });

  it('refuses two controllers of one name', () => {
    assert.throws(() => lambdaHandler([named('widgets'), named('widgets')]), /two controllers are named "widgets"/);
  });
});
