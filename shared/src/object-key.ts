// The identity of a Kubernetes object (group, version, resource, namespace, name), its string form, and its BullMQ id form.
import { InvalidKeyError } from './errors.ts';

/** Which kind of object: the API group (empty for core), version and plural resource name (the URL segment). */
export interface ResourceRef {
  group: string;
  version: string;
  /** Lowercase plural, such as `widgets` or `configmaps`. */
  plural: string;
}

/** One object. `namespace` is empty for cluster-scoped objects. Identity only: never the object. */
export interface ObjectKey extends ResourceRef {
  namespace: string;
  name: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const VERSION = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;

/** `apiVersion` as Kubernetes writes it: `v1` for core, `apps/v1` otherwise. */
export function apiVersionOf(ref: ResourceRef): string {
  return ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
}

/** The resource as kubectl names it: `widgets.example.com`, or `configmaps` for core. */
export function resourceName(ref: ResourceRef): string {
  return ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`;
}

export function validateResourceRef(ref: ResourceRef): void {
  if (ref.group !== '' && (ref.group.length > 253 || !DNS_SUBDOMAIN.test(ref.group))) {
    throw new InvalidKeyError(`group "${ref.group}" is not a DNS subdomain`, 'group');
  }
  if (!VERSION.test(ref.version))
    throw new InvalidKeyError(`version "${ref.version}" is not a Kubernetes API version such as v1 or v1beta1`, 'version');
  if (ref.plural.length > 63 || !DNS_LABEL.test(ref.plural)) {
    throw new InvalidKeyError(`resource "${ref.plural}" is not a lowercase plural resource name`, 'plural');
  }
}

/**
 * Throws InvalidKeyError naming the first part that no Kubernetes resource would accept: the checks
 * every key passes (the queue, the API client). A name here only has to be a safe path segment, since
 * some kinds (RBAC roles) allow ':' and more; what one resource allows is `validateObjectName`'s job.
 */
export function validateKey(key: ObjectKey): void {
  validateResourceRef(key);
  if (key.namespace !== '' && (key.namespace.length > 63 || !DNS_LABEL.test(key.namespace))) {
    throw new InvalidKeyError(`namespace ${quote(key.namespace)} is not a DNS label`, 'namespace');
  }
  if (key.name === '') throw new InvalidKeyError('name is empty', 'name');
  if (key.name.length > 253) throw new InvalidKeyError(`name ${quote(key.name.slice(0, 20))}… is longer than 253 characters`, 'name');
  if (key.name === '.' || key.name === '..') throw new InvalidKeyError(`name "${key.name}" may not be "." or ".."`, 'name');
  if (/[/%\s]/.test(key.name)) throw new InvalidKeyError(`name ${quote(key.name)} may not contain "/", "%" or white space`, 'name');
  // Control and formatting characters (NUL, U+202E RIGHT-TO-LEFT OVERRIDE) are in no Kubernetes name.
  if (/[\p{Cc}\p{Cf}]/u.test(key.name))
    throw new InvalidKeyError(`name ${quote(key.name)} holds a control or formatting character`, 'name');
}

/** Kubernetes' rule for the names of a kind of object (apimachinery's validation of `metadata.name`). */
export type NameRule = 'dns-subdomain' | 'dns-label' | 'dns-1035-label' | 'path-segment';

/** The kinds whose names follow another rule than the DNS-1123 subdomain most kinds (and every custom resource) use. */
const NAME_RULES: Readonly<Record<string, NameRule>> = {
  namespaces: 'dns-label',
  services: 'dns-1035-label',
  'roles.rbac.authorization.k8s.io': 'path-segment',
  'clusterroles.rbac.authorization.k8s.io': 'path-segment',
  'rolebindings.rbac.authorization.k8s.io': 'path-segment',
  'clusterrolebindings.rbac.authorization.k8s.io': 'path-segment',
};

const NAME_RULE_TEXT: Readonly<Record<NameRule, string>> = {
  'dns-subdomain': 'a DNS-1123 subdomain: at most 253 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit',
  'dns-label': 'a DNS-1123 label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
  'dns-1035-label':
    'a DNS-1035 label: at most 63 lowercase letters, digits and "-", starting with a letter and ending with a letter or digit',
  'path-segment': 'a path segment: not "." or "..", without "/" or "%"',
};

export function nameRuleOf(ref: ResourceRef): NameRule {
  return NAME_RULES[resourceName(ref)] ?? 'dns-subdomain';
}

/**
 * Throws InvalidKeyError (part `name` or `namespace`) unless the key's name is one Kubernetes would
 * accept for its resource — for input from people (the reconcile API, `conveyor enqueue`), so a
 * name no object can have is refused at once instead of costing a worker a GET.
 */
export function validateObjectName(key: ObjectKey): void {
  validateKey(key);
  const rule = nameRuleOf(key);
  const fits =
    rule === 'path-segment' ||
    (rule === 'dns-subdomain' && key.name.length <= 253 && DNS_SUBDOMAIN.test(key.name)) ||
    (rule === 'dns-label' && key.name.length <= 63 && DNS_LABEL.test(key.name)) ||
    (rule === 'dns-1035-label' && key.name.length <= 63 && DNS_1035_LABEL.test(key.name));
  if (!fits)
    throw new InvalidKeyError(
      `name ${quote(key.name)} is not a valid ${resourceName(key)} name: it must be ${NAME_RULE_TEXT[rule]}`,
      'name',
    );
}

/** A name in double quotes, anything outside printable ASCII escaped, so a control or bidi character is shown, not obeyed. */
function quote(text: string): string {
  return `"${text.replace(/["\\]|[^\x20-\x7e]/gu, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`))}"`;
}

/**
 * The canonical string of a key: `<apiVersion>/<resource>/<namespace>/<name>`, for example
 * `example.com/v1/widgets/default/w-1`, `v1/configmaps/default/cm`, or `v1/namespaces//kube-system`
 * (empty namespace for cluster-scoped objects).
 */
export function formatKey(key: ObjectKey): string {
  validateKey(key);
  return `${apiVersionOf(key)}/${key.plural}/${key.namespace}/${key.name}`;
}

export function parseKey(text: string): ObjectKey {
  const parts = text.split('/');
  let key: ObjectKey;
  if (parts.length === 4) {
    const [version, plural, namespace, name] = parts as [string, string, string, string];
    key = { group: '', version, plural, namespace, name };
  } else if (parts.length === 5) {
    const [group, version, plural, namespace, name] = parts as [string, string, string, string, string];
    if (group === '')
      throw new InvalidKeyError(`key "${text}" has an empty group; core keys start with the version, as in v1/configmaps/ns/name`);
    key = { group, version, plural, namespace, name };
  } else {
    throw new InvalidKeyError(
      `key "${text}" must be <apiVersion>/<resource>/<namespace>/<name>, such as example.com/v1/widgets/default/w-1`,
    );
  }
  validateKey(key);
  return key;
}

/**
 * A BullMQ job and deduplication id for a key. BullMQ ids may not contain ':' and may not look
 * like integers. The key string always holds '/', so it never looks like an integer; ':' (legal in
 * some names) becomes `%3A`, which cannot be confused with a name because names may not hold '%'.
 */
export function keyToJobId(key: ObjectKey): string {
  return formatKey(key).replaceAll(':', '%3A');
}

export function jobIdToKey(id: string): ObjectKey {
  if (/%(?!3A)/.test(id)) throw new InvalidKeyError(`job id "${id}" has an unknown escape`);
  return parseKey(id.replaceAll('%3A', ':'));
}

/** The key of an object, or of a `{ namespace, name }` target, of a resource (only its group, version and plural are kept). */
export function keyOf(
  ref: ResourceRef,
  of: { name: string; namespace?: string | undefined } | { metadata: { name: string; namespace?: string | undefined } },
): ObjectKey {
  const id = 'metadata' in of ? of.metadata : of;
  return { group: ref.group, version: ref.version, plural: ref.plural, namespace: id.namespace ?? '', name: id.name };
}
