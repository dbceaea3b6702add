// The few defaults kube-apiserver fills into built-in kinds that the simulator reproduces: namespace labels, phase and finalizer, Secret type and stringData, Deployment replicas and strategy.
import { isObject } from './patch.ts';
import type { ResourceType } from './resources.ts';
import type { JsonObject } from './status.ts';

/** The few defaults of built-in kinds the simulator fills. */
export function builtinDefaults(t: ResourceType, obj: JsonObject): void {
  const m = obj.metadata as JsonObject;
  if (t.group === '' && t.plural === 'namespaces') {
    m.labels = { ...((m.labels as JsonObject | undefined) ?? {}), 'kubernetes.io/metadata.name': m.name };
    obj.spec = { finalizers: ['kubernetes'] };
    obj.status = { phase: 'Active' };
  }
  if (t.group === '' && t.plural === 'secrets') {
    encodeStringData(obj);
    if (obj.type === undefined) obj.type = 'Opaque';
  }
  if (t.storageKey === 'apps/deployments') {
    const spec = { ...((obj.spec as JsonObject | undefined) ?? {}) };
    spec.replicas ??= 1;
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
    spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
    obj.spec = spec;
    obj.status = {};
  }
}

export function encodeStringData(obj: JsonObject): void {
  if (!isObject(obj.stringData)) return;
  const data = { ...((obj.data as JsonObject | undefined) ?? {}) };
  for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  obj.data = data;
  delete obj.stringData;
}
