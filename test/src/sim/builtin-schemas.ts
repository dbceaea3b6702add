// Structural schemas of the built-in kinds, read from @kubernetes/client-node's generated models, so unknown fields are dropped (and reported) and server-side apply merges lists as kube-apiserver does.
import * as clientNode from '@kubernetes/client-node';
import { DEDUCED, type Structural } from './structural-schema.ts';

interface ModelAttribute {
  baseName: string;
  type: string;
}

interface ModelClass {
  getAttributeTypeMap(): ModelAttribute[];
}

const MODELS = clientNode as unknown as Record<string, Partial<ModelClass> | undefined>;

/**
 * How the lists of the built-in types merge under server-side apply (their Go `+listType`/`+listMapKey`
 * markers); every other list is atomic.
 */
const LIST_TYPES: Record<string, Pick<Structural, 'listType' | 'listMapKeys'>> = {
  'V1ObjectMeta.finalizers': { listType: 'set' },
  'V1ObjectMeta.ownerReferences': { listType: 'map', listMapKeys: ['uid'] },
  'V1PodSpec.containers': { listType: 'map', listMapKeys: ['name'] },
  'V1PodSpec.initContainers': { listType: 'map', listMapKeys: ['name'] },
  'V1PodSpec.ephemeralContainers': { listType: 'map', listMapKeys: ['name'] },
  'V1PodSpec.volumes': { listType: 'map', listMapKeys: ['name'] },
  'V1PodSpec.imagePullSecrets': { listType: 'map', listMapKeys: ['name'] },
  'V1PodSpec.hostAliases': { listType: 'map', listMapKeys: ['ip'] },
  'V1Container.ports': { listType: 'map', listMapKeys: ['containerPort', 'protocol'] },
  'V1Container.env': { listType: 'map', listMapKeys: ['name'] },
  'V1Container.volumeMounts': { listType: 'map', listMapKeys: ['mountPath'] },
  'V1Container.volumeDevices': { listType: 'map', listMapKeys: ['devicePath'] },
  'V1DeploymentStatus.conditions': { listType: 'map', listMapKeys: ['type'] },
  'V1NamespaceStatus.conditions': { listType: 'map', listMapKeys: ['type'] },
  'V1CustomResourceDefinitionStatus.conditions': { listType: 'map', listMapKeys: ['type'] },
  'V1CustomResourceDefinitionSpec.versions': { listType: 'map', listMapKeys: ['name'] },
};

const cache = new Map<string, Structural>();

/** The schema of a model class by name (`V1Deployment`), built once; undefined when client-node has no such model. */
function modelSchema(name: string): Structural | undefined {
  const known = cache.get(name);
  if (known !== undefined) return known;
  const model = MODELS[name];
  if (typeof model?.getAttributeTypeMap !== 'function') return undefined;
  // Registered before its properties are filled, so recursive models (JSONSchemaProps) terminate.
  const properties: Record<string, Structural> = {};
  const schema: Structural = { type: 'object', properties };
  cache.set(name, schema);
  for (const attribute of model.getAttributeTypeMap()) {
    properties[attribute.baseName] = { ...typeSchema(attribute.type), ...LIST_TYPES[`${name}.${attribute.baseName}`] };
  }
  return schema;
}

/** The schema of one attribute type as client-node writes it: `string`, `Array<V1Container>`, `{ [key: string]: string; }`... */
function typeSchema(type: string): Structural {
  if (type === 'string' || type === 'Date') return { type: 'string' };
  if (type === 'number') return { type: 'number' };
  if (type === 'boolean') return { type: 'boolean' };
  if (type === 'IntOrString') return { intOrString: true };
  if (type === 'any') return DEDUCED;
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1] !== undefined) return { type: 'array', items: typeSchema(array[1]) };
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1] !== undefined) return { type: 'object', additionalProperties: typeSchema(map[1]) };
  return modelSchema(type) ?? DEDUCED;
}

/** ObjectMeta, as every object's `metadata` (and an embedded resource's) is decoded. */
export function objectMetaSchema(): Structural {
  return modelSchema('V1ObjectMeta') ?? DEDUCED;
}

/**
 * The schema of a built-in kind served at `group/version`, or undefined when client-node has no model for it.
 * client-node names most models `V1Deployment`; a kind whose name another group also uses carries its group
 * (`EventsV1Event` for events.k8s.io's Event, `CoreV1Event` for the core one).
 */
export function builtinSchema(version: string, kind: string, group = ''): Structural | undefined {
  const prefix = version.charAt(0).toUpperCase() + version.slice(1);
  const grouped = group.split('.')[0] ?? '';
  return modelSchema(`${grouped.charAt(0).toUpperCase()}${grouped.slice(1)}${prefix}${kind}`) ?? modelSchema(`${prefix}${kind}`);
}
