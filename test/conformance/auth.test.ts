// Conformance: TokenReview and SubjectAccessReview through @kubernetes/client-node; authorization rules on the simulator.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { startKubeSimulator } from '../src/index.ts';
import { expectStatus, openTarget, SIMULATOR_ONLY, type Target, withToken } from './target.ts';

describe('Kubernetes API conformance: authentication and authorization reviews', () => {
  let target: Target;
  before(async () => {
    target = await openTarget();
  });
  after(async () => {
    await target.close();
  });

  it('answers a TokenReview: the caller’s own token is authenticated, a made-up one is not', async (t) => {
    const token = target.kc.getCurrentUser()?.token;
    if (token === undefined) {
      t.skip('the kubeconfig’s user has no bearer token to review');
      return;
    }
    const api = target.kc.makeApiClient(AuthenticationV1Api);
    const mine = await api.createTokenReview({ body: { spec: { token } } });
    assert.equal(mine.status?.authenticated, true);
    assert.ok(mine.status?.user?.username);
    const bogus = await api.createTokenReview({ body: { spec: { token: 'made-up-token' } } });
    assert.notEqual(bogus.status?.authenticated, true);
  });

  it('answers a SelfSubjectAccessReview for something the caller may do', async () => {
    const api = target.kc.makeApiClient(AuthorizationV1Api);
    const review = await api.createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { verb: 'list', resource: 'configmaps', namespace: target.namespace } } },
    });
    assert.equal(review.status?.allowed, true);
  });
});

describe('Kubernetes API simulator: authorization rules', { skip: SIMULATOR_ONLY }, () => {
  it('forbids what no rule allows with 403, and SubjectAccessReview answers from the same rules', async () => {
    const sim = await startKubeSimulator({
      tokens: ['admin-token', { token: 'reader-token', username: 'reader', groups: ['readers'] }],
      authorization: [
        { users: ['admin'] },
        { groups: ['readers'], verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['configmaps'], namespaces: ['default'] },
      ],
    });
    try {
      const admin = sim.kubeConfig();
      const readerCore = withToken(admin, 'reader-token').makeApiClient(CoreV1Api);
      await readerCore.listNamespacedConfigMap({ namespace: 'default' });
      const status = await expectStatus(
        readerCore.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'x' } } }),
        403,
        'Forbidden',
      );
      assert.match(status.message, /User "reader" cannot create resource "configmaps" in API group "" in the namespace "default"/);
      await expectStatus(readerCore.listNamespacedSecret({ namespace: 'default' }), 403, 'Forbidden');
      const authz = admin.makeApiClient(AuthorizationV1Api);
      const allowed = await authz.createSubjectAccessReview({
        body: {
          spec: { user: 'reader', groups: ['readers'], resourceAttributes: { verb: 'get', resource: 'configmaps', namespace: 'default' } },
        },
      });
      assert.equal(allowed.status?.allowed, true);
      const denied = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: 'reader',
            groups: ['readers'],
            resourceAttributes: { verb: 'delete', resource: 'configmaps', namespace: 'default' },
          },
        },
      });
      assert.equal(denied.status?.allowed, false);
      const review = await admin.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: 'reader-token' } } });
      assert.equal(review.status?.user?.username, 'reader');
      assert.deepEqual(review.status?.user?.groups, ['readers']);
    } finally {
      await sim.close();
    }
  });
});
