import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WatchSpec } from '@conveyor/shared';
import { controllerOwner, mappedTargets } from './triggers.ts';

const widget = { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' };
const ref = (apiVersion: string, kind: string, name: string, controller?: boolean) => ({
  apiVersion,
  kind,
  name,
  uid: `uid-${name}`,
  ...(controller === undefined ? {} : { controller }),
});

describe('Triggers', () => {
  it('maps a child to the owner its controller ownerReference names, in the child namespace', () => {
    const meta = { namespace: 'team-a', ownerReferences: [ref('example.com/v1', 'Widget', 'w-1', true)] };
    assert.deepEqual(controllerOwner(meta, widget), { namespace: 'team-a', name: 'w-1' });
  });

  it('ignores owners that are not the controller, of another kind or of another group, and accepts another version', () => {
    assert.equal(controllerOwner({ ownerReferences: [ref('example.com/v1', 'Widget', 'w-1')] }, widget), undefined);
    assert.equal(controllerOwner({ ownerReferences: [ref('example.com/v1', 'Gadget', 'g', true)] }, widget), undefined);
    assert.equal(controllerOwner({ ownerReferences: [ref('other.io/v1', 'Widget', 'w', true)] }, widget), undefined);
    assert.deepEqual(controllerOwner({ namespace: 'n', ownerReferences: [ref('example.com/v1beta1', 'Widget', 'w', true)] }, widget), {
      namespace: 'n',
      name: 'w',
    });
  });

  it('gives a cluster-scoped owner no namespace', () => {
    const meta = { namespace: 'n', ownerReferences: [ref('example.com/v1', 'Cluster', 'c', true)] };
    assert.deepEqual(controllerOwner(meta, { ...widget, kind: 'Cluster', namespaced: false }), { namespace: '', name: 'c' });
  });

  it('fills a mapped target without namespace from the watched object, and reports a map that throws', () => {
    const watch: WatchSpec = {
      resource: { group: '', version: 'v1', plural: 'configmaps' },
      map: (cm) => [{ name: `from-${cm.metadata?.name}` }, { namespace: 'other', name: 'x' }],
    };
    assert.deepEqual(mappedTargets(watch, { metadata: { namespace: 'ns', name: 'cm' } }).targets, [
      { namespace: 'ns', name: 'from-cm' },
      { namespace: 'other', name: 'x' },
    ]);
    const failing: WatchSpec = {
      ...watch,
      map: () => {
        throw new Error('boom');
      },
    };
    const result = mappedTargets(failing, { metadata: {} });
    assert.deepEqual(result.targets, []);
    assert.match(String(result.error), /boom/);
  });
});
