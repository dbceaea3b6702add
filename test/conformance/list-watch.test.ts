// Conformance: list (selectors, pagination, metadata-only) and watch (resume, bookmarks, 410, streaming list) through @kubernetes/client-node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApisApi, CoreV1Api, type KubernetesObject, KubernetesObjectApi, VersionApi } from '@kubernetes/client-node';
import { expectStatus, META, merge, metadataOnly, openTarget, openWatch, rvOf, type Target } from './target.ts';

type List = {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: KubernetesObject[];
};

describe('Kubernetes API conformance: list and watch', () => {
  let target: Target;
  const names = (list: List) => list.items.map((i) => i.metadata?.name).sort();
  before(async () => {
    target = await openTarget();
    const tiers = ['gold', 'silver', 'bronze', undefined];
    for (let i = 0; i < 12; i++) {
      const tier = tiers[i % 4];
      await target.custom.createNamespacedCustomObject({
        ...target.widgets,
        namespace: target.namespace,
        body: {
          apiVersion: `${target.group}/v1`,
          kind: 'Widget',
          metadata: { name: `w${String(i).padStart(2, '0')}`, labels: tier === undefined ? { app: 'x' } : { app: 'x', tier } },
          spec: { size: i, secret: 'spec-content' },
        },
      });
    }
  });
  after(async () => {
    await target.close();
  });

  const list = async (query: Record<string, unknown> = {}, accept?: string) =>
    (await target.custom.listNamespacedCustomObject(
      { ...target.widgets, namespace: target.namespace, ...query },
      accept === undefined ? undefined : metadataOnly(true),
    )) as List;

  it('serves discovery for client-node: /version, /apis, the core and custom group versions', async () => {
    const version = await target.kc.makeApiClient(VersionApi).getCode();
    assert.match(version.gitVersion, /^v1\.\d+/);
    const groups = await target.kc.makeApiClient(ApisApi).getAPIVersions();
    assert.ok(groups.groups.some((g) => g.name === target.group && g.preferredVersion?.version === 'v1'));
    assert.ok(groups.groups.some((g) => g.name === 'apps'));
    const core = await target.kc.makeApiClient(CoreV1Api).getAPIResources();
    assert.ok(core.resources.some((r) => r.name === 'configmaps' && r.namespaced && r.verbs.includes('watch')));
    // KubernetesObjectApi finds the plural of a kind through /apis/<group>/<version>.
    const objects = KubernetesObjectApi.makeApiClient(target.kc);
    const read = await objects.read({
      apiVersion: `${target.group}/v1`,
      kind: 'Widget',
      metadata: { name: 'w01', namespace: target.namespace },
    });
    assert.equal(read.metadata?.name, 'w01');
  });

  it('filters lists by label selectors: =, ==, !=, in, notin, exists, !', async () => {
    assert.deepEqual(names(await list({ labelSelector: 'tier=gold' })), ['w00', 'w04', 'w08']);
    assert.deepEqual(names(await list({ labelSelector: 'tier==gold' })), ['w00', 'w04', 'w08']);
    assert.equal((await list({ labelSelector: 'tier!=gold' })).items.length, 9, '!= also matches objects without the label');
    assert.deepEqual(names(await list({ labelSelector: 'tier in (gold,silver)' })), ['w00', 'w01', 'w04', 'w05', 'w08', 'w09']);
    assert.equal((await list({ labelSelector: 'tier notin (gold,silver)' })).items.length, 6);
    assert.equal((await list({ labelSelector: 'tier' })).items.length, 9);
    assert.deepEqual(names(await list({ labelSelector: '!tier' })), ['w03', 'w07', 'w11']);
    assert.deepEqual(names(await list({ labelSelector: 'app=x,tier in (bronze)' })), ['w02', 'w06', 'w10']);
  });

  it('filters lists by field selectors on metadata.name and metadata.namespace', async () => {
    assert.deepEqual(names(await list({ fieldSelector: 'metadata.name=w03' })), ['w03']);
    assert.equal((await list({ fieldSelector: 'metadata.name!=w03' })).items.length, 11);
    assert.deepEqual(names(await list({ fieldSelector: `metadata.namespace=${target.namespace},metadata.name==w05` })), ['w05']);
    const all = (await target.custom.listClusterCustomObject({
      ...target.widgets,
      fieldSelector: `metadata.namespace=${target.namespace}`,
    })) as List;
    assert.equal(all.items.length, 12);
    await expectStatus(list({ fieldSelector: 'spec.size=1' }), 400, 'BadRequest');
  });

  it('pages with limit and continue, every object exactly once, at one resourceVersion', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    let rv: string | undefined;
    do {
      const page = await list({ limit: 5, ...(token === undefined ? {} : { _continue: token }) });
      pages += 1;
      rv ??= page.metadata.resourceVersion;
      assert.equal(page.metadata.resourceVersion, rv, 'every page reports the first page’s resourceVersion');
      seen.push(...page.items.map((i) => String(i.metadata?.name)));
      token = page.metadata.continue || undefined;
      if (token !== undefined) assert.equal(page.metadata.remainingItemCount, 12 - seen.length);
    } while (token !== undefined);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...seen].sort());
    assert.equal(new Set(seen).size, 12);
  });

  it('returns metadata-only objects and lists (PartialObjectMetadata) without spec', async () => {
    const one = (await target.custom.getNamespacedCustomObject(
      { ...target.widgets, namespace: target.namespace, name: 'w01' },
      metadataOnly(false),
    )) as Record<string, unknown>;
    assert.equal(one.kind, 'PartialObjectMetadata');
    assert.equal(one.apiVersion, 'meta.k8s.io/v1');
    assert.equal(one.spec, undefined);
    assert.equal((one.metadata as { name: string }).name, 'w01');
    const page = await list({ limit: 4 }, 'meta');
    assert.equal(page.kind, 'PartialObjectMetadataList');
    assert.equal(page.apiVersion, 'meta.k8s.io/v1');
    assert.equal(page.items.length, 4);
    assert.ok(page.metadata.continue);
    for (const item of page.items) {
      assert.equal(item.kind, 'PartialObjectMetadata');
      assert.equal((item as Record<string, unknown>).spec, undefined);
      assert.ok(item.metadata?.resourceVersion);
    }
  });

  it('a metadata watch sees ADDED, MODIFIED, DELETED and BOOKMARK, and never a spec', async () => {
    const start = await list({ limit: 1 });
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(
      target.kc,
      path,
      { resourceVersion: start.metadata.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 4 },
      META,
    );
    try {
      const body = {
        apiVersion: `${target.group}/v1`,
        kind: 'Widget',
        metadata: { name: 'watched' },
        spec: { size: 1, secret: 'spec-content' },
      };
      await target.custom.createNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, body });
      await target.custom.patchNamespacedCustomObject(
        { ...target.widgets, namespace: target.namespace, name: 'watched', body: { spec: { size: 2 } } },
        merge(),
      );
      await target.custom.deleteNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name: 'watched' });
      await watch.next((e) => e.type === 'DELETED' && e.object.metadata?.name === 'watched');
      await watch.next((e) => e.type === 'BOOKMARK', 8000);
      const kinds = watch.events.filter((e) => e.object.metadata?.name === 'watched').map((e) => e.type);
      assert.deepEqual(kinds, ['ADDED', 'MODIFIED', 'DELETED']);
      for (const event of watch.events) {
        assert.equal(event.object.kind, 'PartialObjectMetadata', `${event.type} carries PartialObjectMetadata`);
        assert.equal(event.object.spec, undefined, `${event.type} carries no spec`);
      }
      const bookmark = watch.events.find((e) => e.type === 'BOOKMARK');
      assert.ok(bookmark?.object.metadata?.resourceVersion);
      await watch.done;
    } finally {
      watch.stop();
    }
  });

  it('resumes a watch from a resourceVersion, replaying only later changes', async () => {
    const before = await list();
    await target.custom.patchNamespacedCustomObject(
      { ...target.widgets, namespace: target.namespace, name: 'w02', body: { spec: { size: 20 } } },
      merge(),
    );
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(target.kc, path, { resourceVersion: before.metadata.resourceVersion });
    try {
      const event = await watch.next((e) => e.object.metadata?.name === 'w02');
      assert.equal(event.type, 'MODIFIED');
      assert.equal((event.object.spec as { size: number }).size, 20);
      assert.equal(watch.events.length, 1, 'nothing from before the resourceVersion is replayed');
    } finally {
      watch.stop();
    }
  });

  it('starts a watch without resourceVersion with a synthetic ADDED for every existing object', async () => {
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(target.kc, path, { labelSelector: 'tier=gold' });
    try {
      await watch.next((e) => e.object.metadata?.name === 'w08');
      await watch.next(() => watch.events.length >= 3);
      assert.deepEqual(watch.events.map((e) => `${e.type} ${String(e.object.metadata?.name)}`).sort(), [
        'ADDED w00',
        'ADDED w04',
        'ADDED w08',
      ]);
    } finally {
      watch.stop();
    }
  });

  it('tells a watch with a label selector when an object enters (ADDED) and leaves (DELETED) the selection', async () => {
    const start = await list({ limit: 1 });
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(target.kc, path, { resourceVersion: start.metadata.resourceVersion, labelSelector: 'tier=platinum' });
    try {
      const set = (tier: string) =>
        target.custom.patchNamespacedCustomObject(
          { ...target.widgets, namespace: target.namespace, name: 'w03', body: { metadata: { labels: { tier } } } },
          merge(),
        );
      await set('platinum');
      await set('gold');
      await watch.next((e) => e.type === 'DELETED');
      assert.deepEqual(
        watch.events.map((e) => e.type),
        ['ADDED', 'DELETED'],
      );
    } finally {
      watch.stop();
    }
  });

  it('answers a watch from a too-old resourceVersion with an ERROR event carrying a 410 Status', async () => {
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(target.kc, path, { resourceVersion: '1' });
    try {
      const event = await watch.next((e) => e.type === 'ERROR');
      assert.equal(event.object.kind, 'Status');
      assert.equal(event.object.apiVersion, 'v1');
      assert.equal(event.object.status, 'Failure');
      assert.equal(event.object.code, 410);
      assert.ok(event.object.reason === 'Expired' || event.object.reason === 'Gone', `reason ${String(event.object.reason)}`);
    } finally {
      watch.stop();
    }
  });

  it('streams a list with sendInitialEvents, ending in a bookmark annotated k8s.io/initial-events-end', async () => {
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(
      target.kc,
      path,
      { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: true, labelSelector: 'tier=silver' },
      META,
    );
    try {
      const end = await watch.next((e) => e.type === 'BOOKMARK');
      assert.equal((end.object.metadata?.annotations as Record<string, string> | undefined)?.['k8s.io/initial-events-end'], 'true');
      const before = watch.events.slice(0, watch.events.indexOf(end));
      assert.deepEqual(before.map((e) => `${e.type} ${String(e.object.metadata?.name)}`).sort(), ['ADDED w01', 'ADDED w05', 'ADDED w09']);
      assert.ok(BigInt(rvOf(end.object)) >= BigInt(rvOf(before[0]?.object)));
    } finally {
      watch.stop();
    }
  });

  it('rejects sendInitialEvents without resourceVersionMatch=NotOlderThan with 422', async () => {
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const watch = await openWatch(target.kc, path, { sendInitialEvents: true, allowWatchBookmarks: true });
    // client-node's Watch reports a refused watch by its HTTP code only.
    assert.equal(((await watch.done) as { statusCode?: number } | null)?.statusCode, 422);
  });

  it('ends a watch after timeoutSeconds', async () => {
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`;
    const started = Date.now();
    const watch = await openWatch(target.kc, path, {
      resourceVersion: (await list({ limit: 1 })).metadata.resourceVersion,
      timeoutSeconds: 1,
    });
    assert.equal(await watch.done, null, 'a clean end, not an error');
    assert.ok(Date.now() - started < 5000);
  });
});
