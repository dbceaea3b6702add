// Kubernetes status conditions (metav1.Condition) kept stable: lastTransitionTime moves only when the status flips, so a no-op reconcile writes nothing.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/**
 * `next` with its lastTransitionTime: kept from the condition of the same type in `conditions` when
 * the status did not change, `now` otherwise. With status written by server-side apply, patch the
 * conditions your controller owns this way (`conditions: [condition(obj.status?.conditions, {...})]`):
 * they merge by type with other managers' conditions.
 */
export function condition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: () => Date = () => new Date(),
): Condition {
  const previous = conditions?.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous !== undefined && previous.status === next.status
      ? previous.lastTransitionTime
      : now()
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z');
  return { ...next, lastTransitionTime };
}

/** The whole list with `next` set as `condition` stamps it: for status written by merge patch, which replaces the list. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: () => Date = () => new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const stamped = condition(conditions, next, now);
  if (index === -1) list.push(stamped);
  else list[index] = stamped;
  return list;
}
