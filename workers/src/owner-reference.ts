// `ctx.own(child)`: the controller ownerReference from the object being reconciled to a child it makes (controller-runtime's SetControllerReference).
import { type KubeObject, type OwnerReference, type StoredObject, TerminalError } from '@conveyor/shared';

/**
 * Adds to `child` an ownerReference to `owner` with `controller: true` and `blockOwnerDeletion: true` (one to the
 * same owner, by uid, is replaced; others are kept) and returns `child`. Throws TerminalError, naming both, when
 * another object already controls the child — the API server would refuse a second controller reference — or when
 * a namespaced owner's child is in another namespace, which the garbage collector would treat as a missing owner.
 */
export function setControllerReference<C extends KubeObject>(owner: StoredObject, child: C): C {
  const { name, namespace, uid } = owner.metadata;
  if (owner.apiVersion === undefined || owner.kind === undefined || uid === undefined) {
    throw new TerminalError(`ctx.own: the owner ${name} has no apiVersion, kind or uid as read; it cannot be referenced`);
  }
  const metadata = child.metadata ?? {};
  const childName = metadata.name ?? metadata.generateName ?? '(unnamed)';
  if (namespace !== undefined && namespace !== '' && metadata.namespace !== undefined && metadata.namespace !== namespace) {
    throw new TerminalError(
      `ctx.own: ${child.kind ?? 'child'} ${metadata.namespace}/${String(childName)} is in another namespace than its owner ${owner.kind} ${namespace}/${name}; owner references cannot cross namespaces`,
    );
  }
  const existing = metadata.ownerReferences ?? [];
  const other = existing.find((ref) => ref.controller === true && ref.uid !== uid);
  if (other !== undefined) {
    throw new TerminalError(
      `ctx.own: ${child.kind ?? 'child'} ${String(childName)} is already controlled by ${other.kind} ${other.name}; it cannot also be controlled by ${owner.kind} ${name}`,
    );
  }
  const reference: OwnerReference = {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
  child.metadata = { ...metadata, ownerReferences: [...existing.filter((ref) => ref.uid !== uid), reference] };
  return child;
}
