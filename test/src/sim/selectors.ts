// Label and field selectors as kube-apiserver parses them: `a=b,c!=d,e in (f,g),h notin (i),j,!k` and `metadata.name=x`.
import { errors } from './status.ts';

type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: Set<string> }
  | { op: 'gt' | 'lt'; key: string; value: number };

export type LabelMatcher = (labels: Readonly<Record<string, string>> | undefined) => boolean;

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function checkKey(key: string, selector: string): string {
  if (!KEY.test(key)) throw errors.badRequest(`unable to parse requirement: invalid label key "${key}" in selector "${selector}"`);
  return key;
}

function checkValue(value: string, selector: string): string {
  if (!VALUE.test(value)) throw errors.badRequest(`unable to parse requirement: invalid label value "${value}" in selector "${selector}"`);
  return value;
}

function parseRequirement(raw: string, selector: string): LabelRequirement {
  const part = raw.trim();
  const setMatch = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
  if (setMatch !== null) {
    const [, key = '', op, list = ''] = setMatch;
    const values = new Set(list.split(',').map((v) => checkValue(v.trim(), selector)));
    return { op: op === 'in' ? 'in' : 'notin', key: checkKey(key, selector), values };
  }
  const cmp = /^([^=!<>\s]+)\s*(==|=|!=|<|>)\s*(.*)$/.exec(part);
  if (cmp !== null) {
    const [, key = '', op, value = ''] = cmp;
    checkKey(key, selector);
    if (op === '<' || op === '>') {
      const n = Number(value.trim());
      if (!Number.isInteger(n))
        throw errors.badRequest(
          `unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer in selector "${selector}"`,
        );
      return { op: op === '<' ? 'lt' : 'gt', key, value: n };
    }
    const v = checkValue(value.trim(), selector);
    return { op: op === '!=' ? 'notin' : 'in', key, values: new Set([v]) };
  }
  if (part.startsWith('!')) return { op: 'notexists', key: checkKey(part.slice(1).trim(), selector) };
  if (part !== '') return { op: 'exists', key: checkKey(part, selector) };
  throw errors.badRequest(`unable to parse requirement: found '', expected: identifier in selector "${selector}"`);
}

/** Parses a label selector; an empty or missing selector matches everything. Bad syntax → 400 BadRequest. */
export function parseLabelSelector(selector: string | null | undefined): LabelMatcher | undefined {
  if (selector === null || selector === undefined || selector.trim() === '') return undefined;
  const requirements = splitTopLevel(selector).map((p) => parseRequirement(p, selector));
  return (labels) =>
    requirements.every((r) => {
      const value = labels?.[r.key];
      switch (r.op) {
        case 'exists':
          return value !== undefined;
        case 'notexists':
          return value === undefined;
        case 'in':
          return value !== undefined && r.values.has(value);
        case 'notin':
          return value === undefined || !r.values.has(value);
        case 'gt':
          return value !== undefined && Number(value) > r.value;
        case 'lt':
          return value !== undefined && Number(value) < r.value;
      }
      return false;
    });
}

export type FieldMatcher = (fields: { name: string; namespace: string }) => boolean;

/** Parses a field selector over `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`, comma for AND). */
export function parseFieldSelector(selector: string | null | undefined, customResource: boolean): FieldMatcher | undefined {
  if (selector === null || selector === undefined || selector.trim() === '') return undefined;
  const terms = selector.split(',').map((raw) => {
    const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
    if (m === null) throw errors.badRequest(`invalid field selector: invalid selector: '${selector}'; can't understand '${raw}'`);
    const [, field = '', op, value = ''] = m;
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw errors.badRequest(
        customResource
          ? `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`
          : `field label not supported: ${field}`,
      );
    }
    return { field: field === 'metadata.name' ? ('name' as const) : ('namespace' as const), negate: op === '!=', value };
  });
  return (fields) => terms.every((t) => (fields[t.field] === t.value) !== t.negate);
}
