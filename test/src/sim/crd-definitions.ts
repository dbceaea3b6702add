// CustomResourceDefinitions as objects: the checks of their spec (names, scope, versions, structural schemas) and the status the apiextensions controllers give them.
import { isObject } from './patch.ts';
import { errors, type JsonObject, type StatusCause } from './status.ts';
import type { StoredObject } from './store.ts';

function meta(obj: JsonObject): JsonObject {
  return isObject(obj.metadata) ? obj.metadata : {};
}

/** The checks of a CRD's spec that keep the simulator from serving nonsense; kube-apiserver checks more. */
export function validateCrd(crd: JsonObject): void {
  const name = String(meta(crd).name ?? '');
  const spec = isObject(crd.spec) ? crd.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  const causes: StatusCause[] = [];
  if (typeof spec.group !== 'string' || spec.group === '')
    causes.push({ field: 'spec.group', reason: 'FieldValueRequired', message: 'Required value' });
  if (typeof names.plural !== 'string' || names.plural === '')
    causes.push({ field: 'spec.names.plural', reason: 'FieldValueRequired', message: 'Required value' });
  if (typeof names.kind !== 'string' || names.kind === '')
    causes.push({ field: 'spec.names.kind', reason: 'FieldValueRequired', message: 'Required value' });
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
    causes.push({
      field: 'spec.scope',
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"`,
    });
  }
  const versions = Array.isArray(spec.versions) ? (spec.versions as unknown[]) : [];
  if (versions.length === 0 || versions.filter((v) => isObject(v) && v.storage === true).length !== 1) {
    causes.push({
      field: 'spec.versions',
      reason: 'FieldValueInvalid',
      message: 'Invalid value: must have exactly one version marked as storage version',
    });
  }
  versions.forEach((v, i) => {
    const schema = isObject(v) && isObject(v.schema) ? v.schema.openAPIV3Schema : undefined;
    const path = `spec.versions[${i}].schema.openAPIV3Schema`;
    if (!isObject(schema)) causes.push({ field: path, reason: 'FieldValueRequired', message: 'Required value: schemas are required' });
    else checkStructural(schema, path, true, causes);
  });
  if (causes.length === 0 && name !== `${String(names.plural)}.${String(spec.group)}`) {
    causes.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: must be spec.names.plural+"."+spec.group` });
  }
  if (causes.length > 0) throw errors.invalid('CustomResourceDefinition', 'apiextensions.k8s.io', name, causes);
}

/** The rules of a structural schema that most often catch a CRD written by hand: types everywhere, items for arrays. */
function checkStructural(node: JsonObject, path: string, root: boolean, causes: StatusCause[]): void {
  const type = node.type;
  const untyped = node['x-kubernetes-preserve-unknown-fields'] === true || node['x-kubernetes-int-or-string'] === true;
  if (root && type === undefined) {
    causes.push({ field: `${path}.type`, reason: 'FieldValueRequired', message: 'Required value: must not be empty at the root' });
  } else if (root && type !== 'object') {
    causes.push({ field: `${path}.type`, message: `Invalid value: ${JSON.stringify(type)}: must be object at the root` });
  } else if (type === undefined && !untyped) {
    causes.push({
      field: `${path}.type`,
      reason: 'FieldValueRequired',
      message: 'Required value: must not be empty for specified object fields',
    });
  }
  if (type === 'array' && !isObject(node.items)) {
    causes.push({ field: `${path}.items`, reason: 'FieldValueRequired', message: 'Required value: must be specified' });
  }
  const keys = node['x-kubernetes-list-map-keys'];
  if (node['x-kubernetes-list-type'] === 'map' && (!Array.isArray(keys) || keys.length === 0)) {
    causes.push({
      field: `${path}.x-kubernetes-list-map-keys`,
      reason: 'FieldValueRequired',
      message: 'Required value: must not be empty if x-kubernetes-list-type is map',
    });
  }
  if (isObject(node.properties)) {
    for (const [key, child] of Object.entries(node.properties)) {
      if (isObject(child)) checkStructural(child, `${path}.properties[${key}]`, false, causes);
    }
  }
  if (isObject(node.additionalProperties)) checkStructural(node.additionalProperties, `${path}.additionalProperties`, false, causes);
  if (isObject(node.items)) checkStructural(node.items, `${path}.items`, false, causes);
}

/** Fills a CRD's status the way the apiextensions controllers do, at once: names accepted, established. */
export function prepareCrdStatus(crd: JsonObject, current: StoredObject | undefined, time: string): void {
  const spec = crd.spec as JsonObject;
  const previous = (current?.status as JsonObject | undefined) ?? {};
  const versions = ((spec.versions as JsonObject[] | undefined) ?? []).filter((v) => v.storage === true).map((v) => v.name);
  const conditions = [
    { type: 'NamesAccepted', status: 'True', lastTransitionTime: time, reason: 'NoConflicts', message: 'no conflicts found' },
    {
      type: 'Established',
      status: 'True',
      lastTransitionTime: time,
      reason: 'InitialNamesAccepted',
      message: 'the initial names have been accepted',
    },
  ];
  crd.status = {
    conditions: (previous.conditions as unknown[] | undefined) ?? conditions,
    acceptedNames: spec.names,
    storedVersions: [...new Set([...((previous.storedVersions as string[] | undefined) ?? []), ...versions])],
  };
}

export function crdStorageKey(crd: StoredObject | JsonObject): string {
  const spec = crd.spec as JsonObject;
  return `${String(spec.group)}/${String((spec.names as JsonObject).plural)}`;
}
