// Validation of events.k8s.io/v1 Events as kube-apiserver runs it (pkg/apis/core/validation ValidateEventCreate/Update): the strict rules of the new API.
import { deepEqual, isObject } from './patch.ts';
import type { JsonObject, StatusCause } from './status.ts';

/**
 * The field names kube-apiserver reports: Events are validated in their internal (core) form, so
 * `regarding` is reported as `involvedObject`, `note` as `message`, `deprecatedCount` as `count`.
 */
const IMMUTABLE: readonly [string, string][] = [
  ['regarding', 'involvedObject'],
  ['reason', 'reason'],
  ['note', 'message'],
  ['action', 'action'],
  ['related', 'related'],
  ['reportingController', 'reportingController'],
  ['reportingInstance', 'reportingInstance'],
  ['type', 'type'],
  ['eventTime', 'eventTime'],
];
const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

const required = (field: string): StatusCause => ({ field, reason: 'FieldValueRequired', message: 'Required value' });
const invalid = (field: string, value: unknown, why: string): StatusCause => ({
  field,
  reason: 'FieldValueInvalid',
  message: `Invalid value: ${JSON.stringify(value ?? '')}: ${why}`,
});

function text(obj: JsonObject, field: string): string {
  const value = obj[field];
  return typeof value === 'string' ? value : '';
}

/** Every problem of an Event written through events.k8s.io/v1; `current` is the stored Event on an update. */
export function eventCauses(event: JsonObject, current: JsonObject | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  const namespace = String((event.metadata as JsonObject | undefined)?.namespace ?? '');
  const regarding = isObject(event.regarding) ? event.regarding : {};
  const regardingNamespace = typeof regarding.namespace === 'string' ? regarding.namespace : '';
  if (regardingNamespace === '' ? namespace !== '' && namespace !== 'default' : regardingNamespace !== namespace) {
    causes.push(invalid('involvedObject.namespace', regardingNamespace, 'does not match event.namespace'));
  }
  const controller = text(event, 'reportingController');
  if (controller === '') causes.push(required('reportingController'));
  else if (!QUALIFIED_NAME.test(controller)) causes.push(invalid('reportingController', controller, 'must be a qualified name'));
  for (const [field, limit] of [
    ['reportingInstance', 128],
    ['action', 128],
    ['reason', 128],
  ] as const) {
    const value = text(event, field);
    if (value === '') causes.push(required(field));
    else if (Buffer.byteLength(value) > limit) causes.push(invalid(field, '', `can have at most ${limit} characters`));
  }
  // Go's len() of a string: bytes, not characters.
  if (Buffer.byteLength(text(event, 'note')) > 1024) causes.push(invalid('message', '', 'can have at most 1024 characters'));
  if (text(event, 'eventTime') === '') causes.push(required('eventTime'));
  const type = text(event, 'type');
  if (type !== 'Normal' && type !== 'Warning') causes.push(invalid('type', '', `has invalid value: ${type}`));
  for (const deprecated of ['deprecatedFirstTimestamp', 'deprecatedLastTimestamp', 'deprecatedCount', 'deprecatedSource']) {
    if (event[deprecated] !== undefined && event[deprecated] !== null && current === undefined) {
      causes.push(invalid(deprecated, '', 'needs to be unset'));
    }
  }
  if (isObject(event.series)) {
    const count = event.series.count;
    if (typeof count !== 'number' || count < 2) causes.push(invalid('series.count', '', 'should be at least 2'));
    if (typeof event.series.lastObservedTime !== 'string' || event.series.lastObservedTime === '') {
      causes.push(required('series.lastObservedTime'));
    }
  }
  if (current !== undefined) {
    for (const [field, reported] of IMMUTABLE) {
      if (!deepEqual(event[field] ?? null, current[field] ?? null)) {
        causes.push(invalid(reported, event[field], 'field is immutable'));
      }
    }
  }
  return causes;
}
