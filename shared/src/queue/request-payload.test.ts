import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PayloadError } from '../errors.ts';
import { keyToJobId } from '../object-key.ts';
import { decodeRequest, encodeRequest, encodeRequestV1, REQUEST_REASONS } from './request-payload.ts';

const key = { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: 'w-1' };
const jobId = `${keyToJobId(key)}~AbCdEfGh`;

describe('Function: decodeRequest', () => {
  it('reads back what encodeRequest wrote, the key from the job id', () => {
    const payload = encodeRequest({ reason: 'event', trace: '00-abc-def-01', eventAt: 1_699_999_999_990 }, 1_700_000_000_000);
    assert.deepEqual(payload, { v: 2, r: 'e', at: 1_700_000_000_000, e: 10, t: '00-abc-def-01' });
    assert.deepEqual(decodeRequest(JSON.parse(JSON.stringify(payload)), jobId), {
      key,
      reason: 'event',
      at: 1_700_000_000_000,
      trace: '00-abc-def-01',
      eventAt: 1_699_999_999_990,
    });
  });

  it('round-trips every reason, trace and event time, a cluster-scoped key and a name with ":"', () => {
    const keys = [key, { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespace: '', name: 'system:view' }];
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.constantFrom(...REQUEST_REASONS),
        fc.integer({ min: 0, max: 2 ** 42 }),
        fc.option(fc.integer({ min: 0, max: 2 ** 42 }), { nil: undefined }),
        fc.option(fc.string({ minLength: 1, maxLength: 512 }), { nil: undefined }),
        (k, reason, at, eventAt, trace) => {
          const request = { reason, ...(eventAt === undefined ? {} : { eventAt }), ...(trace === undefined ? {} : { trace }) };
          const decoded = decodeRequest(JSON.parse(JSON.stringify(encodeRequest(request, at))), `${keyToJobId(k)}~x`);
          assert.deepEqual(decoded, { key: k, at, ...request });
        },
      ),
    );
  });

  it('reads the v1 payloads older watchers wrote, key included', () => {
    const v1 = { v: 1, key: 'example.com/v1/widgets/default/w-1', reason: 'manual', at: 5, trace: 't', eventAt: 4 };
    assert.deepEqual(encodeRequestV1({ key, reason: 'manual', trace: 't', eventAt: 4 }, 5), v1);
    assert.deepEqual(decodeRequest(v1, jobId), { key, reason: 'manual', at: 5, trace: 't', eventAt: 4 });
  });

  it('names the problem of a bad payload', () => {
    const table: [data: unknown, id: string, message: RegExp][] = [
      [null, jobId, /not a JSON object/],
      [{ key: 'x' }, jobId, /version undefined is not supported; this worker reads v1 and v2/],
      [{ v: 3, r: 'e', at: 1 }, jobId, /version 3 is not supported/],
      [{ v: 2, r: 'later', at: 1 }, jobId, /payload v2 is malformed: r:/],
      [{ v: 2, r: 'e' }, jobId, /payload v2 is malformed: at:/],
      [{ v: 2, r: 'e', at: 1, object: {} }, jobId, /object/],
      [{ v: 2, r: 'e', at: 1, e: 2 }, jobId, /e: 2 puts the event before 1970/],
      [{ v: 2, r: 'e', at: 1 }, 'raw~1', /payload v2: job id "raw~1" holds no object key: key "raw" must be/],
      [{ v: 1, key: 'v1/configmaps/default/a', reason: 'later', at: 1 }, jobId, /payload v1 is malformed: reason/],
      [{ v: 1, key: 'v1/configmaps/default/a', reason: 'event' }, jobId, /at/],
      [{ v: 1, key: 'configmaps/a', reason: 'event', at: 1 }, jobId, /key: key "configmaps\/a" must be/],
    ];
    for (const [data, id, message] of table) {
      assert.throws(
        () => decodeRequest(data, id),
        (error: unknown) => error instanceof PayloadError && message.test(error.message),
        JSON.stringify(data),
      );
    }
  });

  it('refuses to encode an unknown reason, a bad trace or time', () => {
    assert.throws(() => encodeRequest({ reason: 'soon' as 'event' }, 1), /reason "soon" is not one of event, manual, resync/);
    assert.throws(() => encodeRequest({ reason: 'toString' as 'event' }, 1), PayloadError);
    assert.throws(() => encodeRequest({ reason: 'event', trace: '' }, 1), /trace must be 1 to 512 characters/);
    assert.throws(() => encodeRequest({ reason: 'event', trace: 'x'.repeat(513) }, 1), /trace must be/);
    assert.throws(() => encodeRequest({ reason: 'event' }, Number.NaN), /request time NaN is not a time/);
    assert.throws(() => encodeRequest({ reason: 'event', eventAt: -1 }, 1), /eventAt -1 is not a time/);
  });
});
