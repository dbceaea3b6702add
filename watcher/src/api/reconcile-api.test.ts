import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger, formatKey, type ObjectKey } from '@conveyor/shared';
import { serveReconcileApi } from '@conveyor/test/support/serve-reconcile-api';
import fc from 'fast-check';
import { hashToken, TokenFileAuth } from './auth.ts';
import { createReconcileApi } from './reconcile-api.ts';

const widgets = { group: 'example.com', version: 'v1', plural: 'widgets', namespaced: true };

describe('API: POST /v1/reconcile', () => {
  let served: Awaited<ReturnType<typeof serveReconcileApi>>;
  let url: string;
  let enqueued: ObjectKey[][];
  let failEnqueue = false;
  const auditLines: string[] = [];

  before(async () => {
    const auth = new TokenFileAuth([
      { user: 'ops', groups: [], sha256: hashToken('ops-token') },
      { user: 'team-a', groups: [], sha256: hashToken('team-a-token'), namespaces: ['team-a'] },
    ]);
    const audit = createLogger({
      destination: new Writable({
        write(chunk, _enc, done) {
          auditLines.push(String(chunk));
          done();
        },
      }),
    });
    const api = createReconcileApi({
      resource: widgets,
      auth,
      audit,
      maxBodyBytes: 4_096,
      async enqueue(keys) {
        if (failEnqueue) throw new Error('Redis connection refused');
        enqueued.push([...keys]);
      },
    });
    served = await serveReconcileApi(api);
    url = served.url;
  });
  after(async () => {
    await served.close();
  });
  beforeEach(() => {
    enqueued = [];
    failEnqueue = false;
  });

  const post = (body: unknown, token: string | null = 'ops-token', type = 'application/json') =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': type, ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('answers 401 without a token and with an unknown one, enqueueing nothing', async () => {
    for (const token of [null, 'wrong']) {
      const res = await post({ namespace: 'default', name: 'w-1' }, token);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
    assert.deepEqual(enqueued, []);
  });

  it('answers 403 when the caller may not touch the namespace', async () => {
    const res = await post({ namespace: 'team-b', name: 'w-1' }, 'team-a-token');
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error: string }).error, /team-a may not update example.com\/v1\/widgets\/team-b\/w-1/);
    assert.deepEqual(enqueued, []);
  });

  it('accepts one object with 202 and enqueues it', async () => {
    const res = await post({ namespace: 'team-a', name: 'w-1' }, 'team-a-token');
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { accepted: 1, keys: ['example.com/v1/widgets/team-a/w-1'] });
    assert.deepEqual(enqueued.flat().map(formatKey), ['example.com/v1/widgets/team-a/w-1']);
  });

  it('accepts a list of objects in one batch', async () => {
    const objects = Array.from({ length: 50 }, (_, i) => ({ namespace: 'default', name: `w-${i}` }));
    const res = await post({ resource: 'widgets.example.com', objects });
    assert.equal(res.status, 202);
    assert.equal(enqueued.length, 1);
    assert.equal(enqueued[0]?.length, 50);
  });

  const badBodies: [string, unknown, string][] = [
    ['a missing name', { namespace: 'default' }, 'name'],
    ['a missing namespace', { name: 'w-1' }, 'namespace'],
    ['an invalid name', { namespace: 'default', name: 'a/b' }, 'name'],
    ['an invalid namespace', { namespace: 'Default', name: 'w' }, 'namespace'],
    ['an unknown field', { namespace: 'default', name: 'w', prio: 1 }, 'prio'],
    ['a wrong type', { namespace: 'default', name: 7 }, 'name'],
    ['another resource', { resource: 'gadgets', namespace: 'default', name: 'w' }, 'resource'],
    ['an empty list', { objects: [] }, 'objects'],
    ['a bad list entry', { objects: [{ namespace: 'default', name: 'ok' }, { namespace: 'default' }] }, 'objects.1.name'],
    // Names Kubernetes would never give a Widget (a DNS-1123 subdomain): each would cost a worker a GET.
    ['a NUL in the name', { namespace: 'default', name: 'w\u0000x' }, 'name'],
    ['another control character', { namespace: 'default', name: 'w\u001bx' }, 'name'],
    ['a right-to-left override', { namespace: 'default', name: 'w\u202Ex' }, 'name'],
    ['an uppercase name', { namespace: 'default', name: 'Widget-1' }, 'name'],
    ['a "?" in the name', { namespace: 'default', name: 'w?x=1' }, 'name'],
    ['a "#" in the name', { namespace: 'default', name: 'w#x' }, 'name'],
    ['a ":" in the name', { namespace: 'default', name: 'w:x' }, 'name'],
    ['a control character in the namespace', { namespace: 'de\u0000fault', name: 'w' }, 'namespace'],
  ];
  for (const [what, body, field] of badBodies) {
    it(`answers 400 naming the field for ${what}`, async () => {
      const res = await post(body);
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { field: string }).field, field);
      assert.deepEqual(enqueued, []);
    });
  }

  it('answers 400 for a body that is not JSON and 415 for any content type but application/json', async () => {
    assert.equal((await post('{not json')).status, 400);
    for (const type of ['text/plain', 'application/json-patch+json', 'application/jsonx', 'application/merge-patch+json']) {
      assert.equal((await post({ namespace: 'default', name: 'w' }, 'ops-token', type)).status, 415, type);
    }
    assert.equal((await post({ namespace: 'default', name: 'w' }, 'ops-token', 'application/json; charset=utf-8')).status, 202);
    assert.equal(enqueued.length, 1);
  });

  it('names the bad character of a refused name without echoing it raw', async () => {
    const res = await post({ namespace: 'default', name: 'evil\u202Etxt.exe' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string };
    assert.match(body.error, /name "evil\\u\{202e\}txt\.exe" holds a control or formatting character/);
    assert.ok(!body.error.includes('\u202E'));
  });

  it('answers 413 over the size cap', async () => {
    const res = await post({ namespace: 'default', name: 'w', pad: 'x'.repeat(10_000) });
    assert.equal(res.status, 413);
    assert.deepEqual(enqueued, []);
  });

  it('answers 503 with Retry-After and a fixed message when the queue cannot be reached, logging the cause', async () => {
    failEnqueue = true;
    auditLines.length = 0;
    const res = await post({ namespace: 'default', name: 'w' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.deepEqual(await res.json(), { error: 'cannot enqueue now; try again later' });
    assert.match(auditLines.join(''), /Redis connection refused/);
  });

  it('writes one audit line per call with the user and never the token', async () => {
    auditLines.length = 0;
    await post({ namespace: 'default', name: 'w' });
    await post({ namespace: 'default', name: 'w' }, 'wrong');
    assert.equal(auditLines.length, 2);
    assert.match(auditLines[0] ?? '', /"user":"ops"/);
    assert.ok(auditLines.every((line) => !line.includes('ops-token') && !line.includes('wrong')));
  });

  it('never answers 500 and never enqueues from an invalid body (property)', async () => {
    const anyJson = fc.oneof(
      fc.jsonValue(),
      fc.record({ namespace: fc.option(fc.string()), name: fc.option(fc.string()) }, { requiredKeys: [] }),
      fc.record({ objects: fc.array(fc.record({ namespace: fc.string(), name: fc.string() }, { requiredKeys: [] }), { maxLength: 5 }) }),
    );
    await fc.assert(
      fc.asyncProperty(anyJson, async (body) => {
        enqueued = [];
        const res = await post(body);
        await res.arrayBuffer();
        assert.notEqual(res.status, 500);
        if (res.status !== 202) assert.deepEqual(enqueued, []);
        else assert.ok(enqueued.flat().length >= 1);
      }),
      { numRuns: 300 },
    );
  });
});

describe('API: POST /v1/reconcile of a watcher serving several controllers', () => {
  const gadgets = { group: 'example.com', version: 'v1', plural: 'gadgets', namespaced: true };
  let served: Awaited<ReturnType<typeof serveReconcileApi>>;
  const enqueued: ObjectKey[][] = [];

  before(async () => {
    const api = createReconcileApi({
      resources: [widgets, gadgets],
      auth: new TokenFileAuth([{ user: 'ops', groups: [], sha256: hashToken('ops-token') }]),
      audit: createLogger({ level: 'silent' }),
      async enqueue(keys) {
        enqueued.push([...keys]);
      },
    });
    served = await serveReconcileApi(api);
  });
  after(async () => {
    await served.close();
  });

  const post = (body: unknown) =>
    fetch(served.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ops-token' },
      body: JSON.stringify(body),
    });

  it('enqueues the objects of the resource the body names', async () => {
    const res = await post({ resource: 'gadgets.example.com', namespace: 'default', name: 'g-1' });
    assert.equal(res.status, 202);
    assert.deepEqual(enqueued.flat().map(formatKey), ['example.com/v1/gadgets/default/g-1']);
  });

  it('answers 400 naming the resource field when the body names none, or one no controller reconciles', async () => {
    for (const [body, message] of [
      [{ namespace: 'default', name: 'g-1' }, 'resource: missing; this API reconciles one of widgets.example.com, gadgets.example.com'],
      [
        { resource: 'gizmos', namespace: 'default', name: 'g-1' },
        'unknown resource "gizmos"; this API reconciles one of widgets.example.com, gadgets.example.com',
      ],
    ] as const) {
      const res = await post(body);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { error: message, field: 'resource' });
    }
  });
});
