// The kinds of resource the simulator serves: the built-in ones and those CustomResourceDefinitions add, plus discovery documents.
import { builtinSchema } from './builtin-schemas.ts';
import type { JsonObject } from './status.ts';
import { crdVersionSchema, type Structural } from './structural-schema.ts';

export interface ScaleSpec {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Whether writes to the main resource ignore `status` and `/status` writes only change it. */
  statusSubresource: boolean;
  scale: ScaleSpec | undefined;
  /** Whether metadata.generation is kept (kinds with a spec do; ConfigMaps, Secrets, Leases do not). */
  tracksGeneration: boolean;
  /** Strategic merge patch is offered for built-in kinds only, as on a real server. */
  strategicMerge: boolean;
  /** DELETE answers with the object (custom resources) rather than a Status (most built-ins). */
  returnDeletedObject: boolean;
  /** Where objects are kept: one store per group and plural, shared by every version of a CRD. */
  storageKey: string;
  /** PUT without metadata.resourceVersion is allowed (most built-ins) or 422 (custom resources, CRDs). */
  allowUnconditionalUpdate: boolean;
  /** Not listable/watchable resources like TokenReview: create only. */
  createOnly: boolean;
  categories?: string[];
  /** Custom resources get their CRD's schema enforced (pruning, defaulting, validation); built-ins are only pruned. */
  customResource: boolean;
  /** The structural schema of this version: the CRD's, or the built-in kind's from client-node's models. */
  schema: Structural | undefined;
}

export function apiVersionOf(t: { group: string; version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(
  fields: Partial<ResourceType> & Pick<ResourceType, 'group' | 'version' | 'plural' | 'singular' | 'kind' | 'namespaced'>,
): ResourceType {
  return {
    listKind: `${fields.kind}List`,
    shortNames: [],
    statusSubresource: false,
    scale: undefined,
    tracksGeneration: false,
    strategicMerge: true,
    returnDeletedObject: false,
    storageKey: `${fields.group}/${fields.plural}`,
    createOnly: false,
    allowUnconditionalUpdate: true,
    customResource: false,
    schema: fields.createOnly === true ? undefined : builtinSchema(fields.version, fields.kind, fields.group),
    ...fields,
  };
}

export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  builtin({
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
    returnDeletedObject: true,
  }),
  builtin({
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
  }),
  builtin({ group: '', version: 'v1', plural: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true }),
  builtin({
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    statusSubresource: true,
    tracksGeneration: true,
    scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
    categories: ['all'],
  }),
  builtin({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', singular: 'lease', kind: 'Lease', namespaced: true }),
  // events.k8s.io/v1 only: the core/v1 view of the same Events (involvedObject, message, count) is not served.
  builtin({
    group: 'events.k8s.io',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
  }),
  builtin({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    statusSubresource: true,
    tracksGeneration: true,
    returnDeletedObject: true,
    allowUnconditionalUpdate: false,
  }),
  builtin({
    group: 'authentication.k8s.io',
    version: 'v1',
    plural: 'tokenreviews',
    singular: 'tokenreview',
    kind: 'TokenReview',
    namespaced: false,
    createOnly: true,
  }),
  builtin({
    group: 'authorization.k8s.io',
    version: 'v1',
    plural: 'subjectaccessreviews',
    singular: 'subjectaccessreview',
    kind: 'SubjectAccessReview',
    namespaced: false,
    createOnly: true,
  }),
  builtin({
    group: 'authorization.k8s.io',
    version: 'v1',
    plural: 'selfsubjectaccessreviews',
    singular: 'selfsubjectaccessreview',
    kind: 'SelfSubjectAccessReview',
    namespaced: false,
    createOnly: true,
  }),
];

/** The resource types a CustomResourceDefinition serves: one per served version. */
export function resourceTypesOfCrd(crd: JsonObject): ResourceType[] {
  const spec = crd.spec as JsonObject;
  const names = spec.names as JsonObject;
  const group = spec.group as string;
  const plural = names.plural as string;
  const kind = names.kind as string;
  const versions = (spec.versions as JsonObject[]) ?? [];
  return versions
    .filter((v) => v.served !== false)
    .map((v) => {
      const subresources = (v.subresources ?? {}) as JsonObject;
      const scale = subresources.scale as JsonObject | undefined;
      return {
        group,
        version: v.name as string,
        plural,
        singular: (names.singular as string | undefined) ?? kind.toLowerCase(),
        kind,
        listKind: (names.listKind as string | undefined) ?? `${kind}List`,
        namespaced: spec.scope === 'Namespaced',
        shortNames: (names.shortNames as string[] | undefined) ?? [],
        statusSubresource: subresources.status !== undefined,
        scale:
          scale === undefined
            ? undefined
            : {
                specReplicasPath: scale.specReplicasPath as string,
                statusReplicasPath: scale.statusReplicasPath as string,
                ...(typeof scale.labelSelectorPath === 'string' ? { labelSelectorPath: scale.labelSelectorPath } : {}),
              },
        tracksGeneration: true,
        strategicMerge: false,
        returnDeletedObject: true,
        storageKey: `${group}/${plural}`,
        createOnly: false,
        allowUnconditionalUpdate: false,
        customResource: true,
        schema: crdVersionSchema(crd, v),
        ...(Array.isArray(names.categories) ? { categories: names.categories as string[] } : {}),
      } satisfies ResourceType;
    });
}

/** The storage version of a CRD: the one `storage: true` names, else the first. */
export function storageVersionOfCrd(crd: JsonObject): string {
  const versions = ((crd.spec as JsonObject).versions as JsonObject[]) ?? [];
  return ((versions.find((v) => v.storage === true) ?? versions[0])?.name as string | undefined) ?? 'v1';
}

/** Discovery: `/api/v1` or `/apis/<group>/<version>` as an APIResourceList. */
export function apiResourceList(groupVersion: string, types: readonly ResourceType[]): JsonObject {
  const resources: JsonObject[] = [];
  for (const t of types) {
    const verbs = t.createOnly ? ['create'] : ALL_VERBS;
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs,
      ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
      ...(t.categories !== undefined ? { categories: t.categories } : {}),
    });
    if (t.statusSubresource) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
    if (t.scale !== undefined) {
      resources.push({
        name: `${t.plural}/scale`,
        singularName: '',
        namespaced: t.namespaced,
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
        verbs: ['get', 'patch', 'update'],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}

/** Discovery: `/apis` as an APIGroupList, versions in the order the types were registered. */
export function apiGroupList(types: readonly ResourceType[]): JsonObject {
  const groups = new Map<string, string[]>();
  for (const t of types) {
    if (t.group === '') continue;
    const versions = groups.get(t.group) ?? [];
    if (!versions.includes(t.version)) versions.push(t.version);
    groups.set(t.group, versions);
  }
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups].map(([name, versions]) => {
      const list = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
      return { name, versions: list, preferredVersion: list[0] };
    }),
  };
}
