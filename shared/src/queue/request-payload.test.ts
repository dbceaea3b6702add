import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PayloadError } from '../errors.ts';
import { decodeRequest, encodeRequest } from './request-payload.ts';

const key = { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: 'w-1' };

describe('Function: decodeRequest', () => {
  it('reads back what encodeRequest wrote, trace included', () => {
    const payload = encodeRequest({ key, reason: 'event', trace: '00-abc-def-01' }, 1_700_000_000_000);
    assert.deepEqual(payload, {
      v: 1,
      key: 'example.com/v1/widgets/default/w-1',
      reason: 'event',
      at: 1_700_000_000_000,
      trace: '00-abc-def-01',
    });
    assert.deepEqual(decodeRequest(JSON.parse(JSON.stringify(payload))), {
      key,
      reason: 'event',
      at: 1_700_000_000_000,
      trace: '00-abc-def-01',
    });
  });

  it('names the problem of a bad payload', () => {
    const table: [data: unknown, message: RegExp][] = [
      [null, /not a JSON object/],
      [{ key: 'x' }, /version undefined is not supported; this worker reads v1/],
      [{ v: 2, key: 'v1/configmaps/default/a', reason: 'event', at: 1 }, /version 2 is not supported/],
      [{ v: 1, key: 'v1/configmaps/default/a', reason: 'later', at: 1 }, /reason/],
      [{ v: 1, key: 'v1/configmaps/default/a', reason: 'event' }, /at/],
      [{ v: 1, key: 'v1/configmaps/default/a', reason: 'event', at: 1, object: {} }, /object/],
      [{ v: 1, key: 'configmaps/a', reason: 'event', at: 1 }, /key: key "configmaps\/a" must be/],
    ];
    for (const [data, message] of table) {
      assert.throws(
        () => decodeRequest(data),
        (error: unknown) => error instanceof PayloadError && message.test(error.message),
        JSON.stringify(data),
      );
    }
  });

  it('refuses to encode an invalid key or reason', () => {
    assert.throws(() => encodeRequest({ key: { ...key, name: 'a/b' }, reason: 'event' }, 1), /may not contain/);
    assert.throws(() => encodeRequest({ key, reason: 'soon' as 'event' }, 1), PayloadError);
  });
});
