import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger, KubeApiClient, type ObjectKey } from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { serveReconcileApi } from '@conveyor/test/support/serve-reconcile-api';
import { ChainAuth, hashToken, KubeAuth, TokenFileAuth } from './auth.ts';
import { createReconcileApi } from './reconcile-api.ts';

const widgets = { group: 'example.com', version: 'v1', plural: 'widgets', namespaced: true };

// The manual-enqueue API with the cluster deciding: TokenReview says who the caller is, a
// SubjectAccessReview for `update` on the Widget says whether they may ask for its reconcile.
describe('API: POST /v1/reconcile authenticated by TokenReview and authorised by SubjectAccessReview', () => {
  let sim: KubeSimulator;
  let served: Awaited<ReturnType<typeof serveReconcileApi>>;
  let url: string;
  let enqueued: ObjectKey[][];

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
      new KubeAuth(new KubeApiClient({ kubeConfig: sim.kubeConfig() })),
    ]);
    const api = createReconcileApi({
      resource: widgets,
      auth,
      audit: createLogger({ level: 'silent' }),
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
});
