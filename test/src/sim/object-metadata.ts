// Validation of ObjectMeta as kube-apiserver runs it on every write: names, labels, annotations, finalizers and ownerReferences.
import { isObject } from './patch.ts';
import type { JsonObject, StatusCause } from './status.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export interface ObjectMetaRules {
  /** Whether an empty name is an error (top-level objects; embedded resources may leave it out). */
  requireName: boolean;
  /** Check the name's format: a DNS-1123 label (namespaces) or subdomain (most kinds). Only on create. */
  nameFormat?: 'label' | 'subdomain';
}

/** The causes of a 422 for this metadata, with fields under `prefix` (`metadata`, `spec.template.metadata`). */
export function validateObjectMeta(m: JsonObject, prefix: string, rules: ObjectMetaRules): StatusCause[] {
  const causes: StatusCause[] = [];
  const name = typeof m.name === 'string' ? m.name : '';
  if (name === '' && rules.requireName)
    causes.push({ field: `${prefix}.name`, reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' });
  else if (name !== '' && rules.nameFormat !== undefined) {
    const label = rules.nameFormat === 'label';
    if (name.length > (label ? 63 : 253) || !(label ? DNS_LABEL : DNS_SUBDOMAIN).test(name)) {
      causes.push({
        field: `${prefix}.name`,
        message: `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 ${label ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-'${label ? '' : " or '.'"}, and must start and end with an alphanumeric character`,
      });
    }
  }
  causes.push(...validateLabels(m.labels, `${prefix}.labels`));
  if (m.annotations !== undefined && m.annotations !== null && !isObject(m.annotations)) {
    causes.push({ field: `${prefix}.annotations`, message: 'Invalid value: annotations must be a map of strings' });
  }
  const finalizers = m.finalizers;
  if (finalizers !== undefined && finalizers !== null && (!Array.isArray(finalizers) || finalizers.some((f) => typeof f !== 'string'))) {
    causes.push({ field: `${prefix}.finalizers`, message: 'Invalid value: finalizers must be a list of strings' });
  }
  if (Array.isArray(m.ownerReferences)) causes.push(...validateOwnerReferences(m.ownerReferences, `${prefix}.ownerReferences`));
  return causes;
}

function validateLabels(labels: unknown, field: string): StatusCause[] {
  if (labels === undefined || labels === null) return [];
  if (!isObject(labels)) return [{ field, message: 'Invalid value: labels must be a map of strings' }];
  const causes: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k))
      causes.push({
        field,
        message: `Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.'`,
      });
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      causes.push({
        field,
        message: `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
      });
    }
  }
  return causes;
}

/** Each reference names apiVersion (with a version), kind, name and uid; at most one is the controller. */
function validateOwnerReferences(refs: unknown[], field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  let controller = '';
  for (const ref of refs) {
    const r = isObject(ref) ? ref : {};
    const text = (key: string) => (typeof r[key] === 'string' ? (r[key] as string) : '');
    const version = text('apiVersion').split('/').pop() ?? '';
    if (version === '')
      causes.push({
        field: `${field}.apiVersion`,
        message: `Invalid value: ${JSON.stringify(text('apiVersion'))}: version must not be empty`,
      });
    for (const key of ['kind', 'name', 'uid']) {
      if (text(key) === '') causes.push({ field: `${field}.${key}`, message: `Invalid value: "": ${key} must not be empty` });
    }
    if (r.controller === true) {
      const current = `${text('kind')}/${text('name')}`;
      if (controller === '') controller = current;
      else {
        causes.push({
          field,
          message: `Invalid value: []v1.OwnerReference{...}: Only one reference can have Controller set to true. Found "true" in references for ${controller} and ${current}`,
        });
      }
    }
  }
  return causes;
}
