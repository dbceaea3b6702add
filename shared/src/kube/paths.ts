// API paths of Kubernetes resources and objects, every segment URL-encoded.
import type { ResourceRef } from '../object-key.ts';

/**
 * The path of a resource's collection (`name` omitted), of one object, or of one of its subresources:
 * `/api/v1/namespaces/default/configmaps/x`, `/apis/example.com/v1/widgets`. An empty `namespace`
 * means cluster-scoped, or every namespace for a collection. Every segment is encoded, so a name
 * with `:` (RBAC objects allow it) or anything stranger cannot change the path's shape.
 */
export function resourcePath(ref: ResourceRef, namespace = '', name?: string, subresource?: string): string {
  const e = encodeURIComponent;
  const root = groupVersionPath(ref);
  const scope = namespace === '' ? '' : `/namespaces/${e(namespace)}`;
  const object = name === undefined ? '' : `/${e(name)}`;
  const sub = subresource === undefined ? '' : `/${e(subresource)}`;
  return `${root}${scope}/${e(ref.plural)}${object}${sub}`;
}

/** The discovery path of an API group version: `/api/v1`, `/apis/apps/v1`. */
export function groupVersionPath(ref: Pick<ResourceRef, 'group' | 'version'>): string {
  const e = encodeURIComponent;
  return ref.group === '' ? `/api/${e(ref.version)}` : `/apis/${e(ref.group)}/${e(ref.version)}`;
}
