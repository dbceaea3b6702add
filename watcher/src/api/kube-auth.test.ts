import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger, KubeApiClient, type ObjectKey } from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { serveReconcileApi } from '@conveyor/test/support/serve-reconcile-api';
import { ChainAuth, hashToken, KubeAuth, TokenFileAuth } from './auth.ts';
import { createReconcileApi } from './reconcile-api.ts';

const widgets = { group: 'example.com', version: 'v1', plural: 'widgets', namespaced: true };
/** The reviews' bound in these tests (api.timeout, 5 s by default). */
const REVIEW_TIMEOUT_MS = 1_000;

// The manual-enqueue API with the cluster deciding: TokenReview says who the caller is, a
// SubjectAccessReview for `update` on the Widget says whether they may ask for its reconcile.
describe('API: POST /v1/reconcile authenticated by TokenReview and authorised by SubjectAccessReview', () => {
  let sim: KubeSimulator;
  let served: Awaited<ReturnType<typeof serveReconcileApi>>;
  let url: string;
  let enqueued: ObjectKey[][];
  const auditLines: string[] = [];

  before(async () => {
    sim = await startKubeSimulator({
      tokens: [
        'watcher-token', // the watcher's own service account: may create the reviews
        { token: 'alice-token', username: 'alice', groups: ['team-a', 'system:authenticated'] },
        { token: 'bob-token', username: 'bob', groups: ['viewers', 'system:authenticated'] },
      ],
      authorization: [
        { users: ['admin'] },
        { groups: ['team-a'], verbs: ['update'], apiGroups: ['example.com'], resources: ['widgets'], namespaces: ['team-a'] },
        { groups: ['viewers'], verbs: ['get', 'list', 'watch'], apiGroups: ['example.com'], resources: ['widgets'] },
      ],
    });
    const auth = new ChainAuth([
      new TokenFileAuth([{ user: 'ops', groups: [], sha256: hashToken('ops-token') }]),
      new KubeAuth(new KubeApiClient({ kubeConfig: sim.kubeConfig() }), { timeoutMs: REVIEW_TIMEOUT_MS }),
    ]);
    const api = createReconcileApi({
      resource: widgets,
      auth,
      timeoutMs: REVIEW_TIMEOUT_MS,
      audit: createLogger({
        destination: new Writable({
          write(chunk, _encoding, done) {
            auditLines.push(String(chunk));
            done();
          },
        }),
      }),
      async enqueue(keys) {
        enqueued.push([...keys]);
      },
    });
    served = await serveReconcileApi(api);
    url = served.url;
  });
  after(async () => {
    await served.close();
    await sim.close();
  });
  beforeEach(() => {
    enqueued = [];
    auditLines.length = 0;
    sim.faults.reset();
  });

  const post = (token: string | undefined, namespace: string, name = 'w-1') =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify({ namespace, name }),
    });

  it('answers 401 to a token the cluster does not know, and to no token', async () => {
    assert.equal((await post('stolen-token', 'team-a')).status, 401);
    assert.equal((await post(undefined, 'team-a')).status, 401);
    assert.deepEqual(enqueued, []);
  });

  it('accepts a user the cluster lets update the Widget (202) and enqueues it', async () => {
    const response = await post('alice-token', 'team-a');
    assert.equal(response.status, 202);
    assert.deepEqual(
      enqueued.flat().map((k) => `${k.namespace}/${k.name}`),
      ['team-a/w-1'],
    );
  });

  it('answers 403 where the cluster refuses update: another namespace, or a user who may only read', async () => {
    assert.equal((await post('alice-token', 'team-b')).status, 403);
    assert.equal((await post('bob-token', 'team-a')).status, 403);
    assert.deepEqual(enqueued, []);
  });

  it('remembers a TokenReview for a while and asks a SubjectAccessReview for each new object', async () => {
    sim.resetCounters();
    assert.equal((await post('alice-token', 'team-a', 'w-2')).status, 202);
    const reviews = sim
      .counters()
      .entries.filter((e) => e.resource === 'tokenreviews' || e.resource === 'subjectaccessreviews')
      .map((e) => [e.verb, e.resource, e.code]);
    // The token was reviewed by an earlier call and is cached; the decision for w-2 is new.
    assert.deepEqual(reviews, [['create', 'subjectaccessreviews', 201]]);
  });

  it('still takes token-file callers first, without asking the cluster', async () => {
    sim.resetCounters();
    assert.equal((await post('ops-token', 'anywhere')).status, 202);
    assert.deepEqual(sim.counters().entries, []);
  });

  it('answers 503 with a fixed message when TokenReview fails, and keeps the API server’s words in the log', async () => {
    sim.faults.serverErrors({ resources: ['tokenreviews'] });
    const response = await post('any-token-at-all', 'team-a');
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    const text = await response.text();
    assert.deepEqual(JSON.parse(text), { error: 'cannot check the token now; try again later' });
    assert.doesNotMatch(text, /InternalError|tokenreviews|500|POST|content-type/i);
    assert.deepEqual(enqueued, []);
    const logged = auditLines.join('');
    assert.match(logged, /TokenReview failed: POST \/apis\/authentication\.k8s\.io\/v1\/tokenreviews: 500/);
    assert.ok(!logged.includes('any-token-at-all'), 'the token is never logged');
  });

  it('answers 503 within its timeout while the API server does not answer', async () => {
    sim.faults.pause();
    try {
      const sent = Date.now();
      const response = await post('another-token', 'team-a');
      const tookMs = Date.now() - sent;
      assert.equal(response.status, 503);
      assert.deepEqual(await response.json(), { error: 'cannot check the token now; try again later' });
      // The bound is the behaviour (api.timeout); the slack is for a loaded machine.
      assert.ok(tookMs < REVIEW_TIMEOUT_MS + 10_000, `answered after ${tookMs} ms`);
      // Whichever noticed first, the TokenReview's own timeout or the API's bound on authentication.
      assert.match(auditLines.join(''), /"err":"(TokenReview failed|authentication): no answer within 1000 ms"/);
    } finally {
      sim.faults.resume();
    }
  });
});
