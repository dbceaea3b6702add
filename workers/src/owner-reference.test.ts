import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type StoredObject, TerminalError } from '@conveyor/shared';
import { setControllerReference } from './owner-reference.ts';

const owner: StoredObject = {
  apiVersion: 'example.com/v1',
  kind: 'Widget',
  metadata: { name: 'w-1', namespace: 'default', uid: 'uid-w-1', resourceVersion: '7' },
};
const reference = { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w-1', uid: 'uid-w-1', controller: true, blockOwnerDeletion: true };

describe('Function: setControllerReference (ctx.own)', () => {
  it('adds a controller reference and keeps the other owners', () => {
    const other = { apiVersion: 'v1', kind: 'ConfigMap', name: 'shared', uid: 'uid-cm' };
    const child = setControllerReference(owner, { kind: 'ConfigMap', metadata: { name: 'c', ownerReferences: [other] } });
    assert.deepEqual(child.metadata?.ownerReferences, [other, reference]);
  });

  it('replaces an earlier reference to the same owner instead of adding a second', () => {
    const stale = { ...reference, controller: false, name: 'old-name' };
    const child = setControllerReference(owner, { metadata: { name: 'c', namespace: 'default', ownerReferences: [stale] } });
    assert.deepEqual(child.metadata?.ownerReferences, [reference]);
  });

  it('refuses a child another object controls, naming it', () => {
    const theirs = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-web', controller: true };
    assert.throws(
      () => setControllerReference(owner, { kind: 'ConfigMap', metadata: { name: 'c', ownerReferences: [theirs] } }),
      (error: unknown) => error instanceof TerminalError && /already controlled by Deployment web/.test(error.message),
    );
  });

  it('refuses a child in another namespace', () => {
    assert.throws(
      () => setControllerReference(owner, { kind: 'ConfigMap', metadata: { name: 'c', namespace: 'other' } }),
      (error: unknown) => error instanceof TerminalError && /cannot cross namespaces/.test(error.message),
    );
  });
});
