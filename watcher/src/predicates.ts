// Event predicates over compact metadata digests: each decision is { pass, reason }, and deletion-related changes always pass.
import {
  type BuiltInPredicate,
  type ObjectMeta,
  type PredicateResult,
  type PredicateSpec,
  type PreviousMeta,
  REQUESTED_AT_ANNOTATIONS,
} from '@conveyor/shared';
import { hash53, hashStringList, hashStringMap, hashValue } from '@conveyor/shared/fnv';
import {
  BASE_COLUMNS,
  COLUMNS,
  FLAG_DELETING,
  FLAG_HAS_FINALIZERS,
  FLAG_SEEN,
  type ObjectTable,
  parseResourceVersion,
} from './object-table.ts';

/** Conveyor's manual-reconcile annotation (see REQUESTED_AT_ANNOTATIONS: Flux's is honoured too). */
export const REQUESTED_AT_ANNOTATION = REQUESTED_AT_ANNOTATIONS.conveyor;
const REQUESTED_AT_KEYS = [REQUESTED_AT_ANNOTATIONS.flux, REQUESTED_AT_ANNOTATIONS.conveyor];

/** How an object reached us: a watch event, or an item of a (re)list. */
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'LISTED';

/** Reasons an event passes regardless of the configured predicates. */
export const ALWAYS_PASS_REASONS = ['created', 'recreated', 'deleted', 'deletion', 'finalizers', 'requested'] as const;
/** Reasons an event is dropped. */
export const DROP_REASONS = ['unchanged', 'filtered', 'stale', 'other-shard'] as const;

/** Everything predicates need of one object's metadata, as numbers. */
export interface MetaDigest {
  uid: number;
  generation: number;
  resourceVersion: string;
  labels: number;
  annotations: number;
  finalizers: number;
  requestedAt: number;
  deleting: boolean;
  hasFinalizers: boolean;
  /** One hash per user `changed` projection, in column order. */
  projections: number[];
}

/** The configured predicates, prepared once: built-ins, projection columns, test functions. */
export interface CompiledPredicates {
  builtIns: ReadonlySet<BuiltInPredicate>;
  projections: readonly { name: string; column: number; changed: (meta: ObjectMeta) => unknown }[];
  tests: readonly { name: string; test: (previous: PreviousMeta | undefined, meta: ObjectMeta) => boolean | PredicateResult }[];
  /** Every reason a decision may carry, for metrics created at 0. */
  passReasons: readonly string[];
}

/** Prepares predicates; `['generation']` when none are given, like controller-runtime's GenerationChangedPredicate. */
export function compilePredicates(specs: readonly PredicateSpec[] | undefined): CompiledPredicates {
  const builtIns = new Set<BuiltInPredicate>();
  const projections: { name: string; column: number; changed: (meta: ObjectMeta) => unknown }[] = [];
  const tests: CompiledPredicates['tests'][number][] = [];
  for (const spec of specs ?? ['generation']) {
    if (typeof spec === 'string') builtIns.add(spec);
    else if ('changed' in spec) projections.push({ name: spec.name, column: BASE_COLUMNS + projections.length, changed: spec.changed });
    else tests.push({ name: spec.name, test: spec.test });
  }
  const passReasons = [
    ...ALWAYS_PASS_REASONS,
    ...[...builtIns].filter((b) => b !== 'finalizers' && b !== 'deletion'),
    ...projections.map((p) => p.name),
    ...tests.map((t) => t.name),
  ];
  return { builtIns, projections, tests, passReasons: [...new Set(passReasons)] };
}

export function digestMeta(meta: ObjectMeta, predicates: CompiledPredicates): MetaDigest {
  const annotations = meta.annotations;
  // Either annotation, Flux's (`flux reconcile`, `conveyor enqueue --annotate`) or Conveyor's: a change of either asks.
  const flux = annotations?.[REQUESTED_AT_ANNOTATIONS.flux];
  const own = annotations?.[REQUESTED_AT_ANNOTATIONS.conveyor];
  const requested = flux === undefined && own === undefined ? undefined : `${flux ?? ''}\u0000${own ?? ''}`;
  return {
    uid: hash53(meta.uid ?? ''),
    generation: meta.generation ?? 0,
    resourceVersion: meta.resourceVersion ?? '',
    labels: hashStringMap(meta.labels),
    annotations: hashStringMap(annotations, REQUESTED_AT_KEYS),
    finalizers: hashStringList(meta.finalizers),
    requestedAt: requested === undefined ? 0 : hash53(requested) || 1,
    deleting: meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null,
    hasFinalizers: (meta.finalizers?.length ?? 0) > 0,
    projections: predicates.projections.map((p) => hashValue(p.changed(meta))),
  };
}

const pass = (reason: string): PredicateResult => ({ pass: true, reason });
const drop = (reason: (typeof DROP_REASONS)[number]): PredicateResult => ({ pass: false, reason });

/**
 * Decides whether an event for an object enqueues it. `row` is the object's row in `table`, or
 * undefined when the watcher has not seen it. Order: lifecycle and deletion first (always pass),
 * then the manual annotation, then replays, then the configured predicates (any one passing).
 */
export function decide(
  table: ObjectTable,
  row: number | undefined,
  next: MetaDigest,
  type: EventType,
  predicates: CompiledPredicates,
  meta: ObjectMeta,
): PredicateResult {
  if (type === 'DELETED') return pass('deleted');
  if (row === undefined) return pass('created');
  if (table.get(row, COLUMNS.uid) !== next.uid) return pass('recreated');

  const previousRv = table.get(row, COLUMNS.rv);
  const nextRv = parseResourceVersion(next.resourceVersion);
  if (next.resourceVersion === table.resourceVersion(row)) return drop('unchanged');
  // A replay of something older than what we hold (resumed watch overlapping a list) changes nothing.
  if (!Number.isNaN(previousRv) && !Number.isNaN(nextRv) && nextRv < previousRv) return drop('stale');

  const flags = table.get(row, COLUMNS.flags);
  if (next.deleting && (flags & FLAG_DELETING) === 0) return pass('deletion');
  if (table.get(row, COLUMNS.finalizers) !== next.finalizers) return pass('finalizers');
  if (table.get(row, COLUMNS.requestedAt) !== next.requestedAt && next.requestedAt !== 0) return pass('requested');

  const b = predicates.builtIns;
  if (b.has('generation') && table.get(row, COLUMNS.generation) !== next.generation) return pass('generation');
  if (b.has('labels') && table.get(row, COLUMNS.labels) !== next.labels) return pass('labels');
  if (b.has('annotations') && table.get(row, COLUMNS.annotations) !== next.annotations) return pass('annotations');
  if (b.has('resourceVersion')) return pass('resourceVersion');
  for (const [i, p] of predicates.projections.entries()) {
    if (table.get(row, p.column) !== next.projections[i]) return pass(p.name);
  }
  if (predicates.tests.length > 0) {
    const previous = previousMeta(table, row);
    for (const t of predicates.tests) {
      const result = t.test(previous, meta);
      if (result === true || (typeof result === 'object' && result.pass)) return pass(t.name);
    }
  }
  return drop('filtered');
}

/** Writes a digest into the object's row, marking it seen. */
export function storeDigest(table: ObjectTable, row: number, digest: MetaDigest, predicates: CompiledPredicates): void {
  table.set(row, COLUMNS.uid, digest.uid);
  table.set(row, COLUMNS.generation, digest.generation);
  table.setResourceVersion(row, digest.resourceVersion);
  table.set(row, COLUMNS.labels, digest.labels);
  table.set(row, COLUMNS.annotations, digest.annotations);
  table.set(row, COLUMNS.finalizers, digest.finalizers);
  table.set(row, COLUMNS.requestedAt, digest.requestedAt);
  table.set(row, COLUMNS.flags, (digest.deleting ? FLAG_DELETING : 0) | (digest.hasFinalizers ? FLAG_HAS_FINALIZERS : 0) | FLAG_SEEN);
  for (const [i, p] of predicates.projections.entries()) table.set(row, p.column, digest.projections[i] ?? 0);
}

export function previousMeta(table: ObjectTable, row: number): PreviousMeta {
  const flags = table.get(row, COLUMNS.flags);
  return {
    generation: table.get(row, COLUMNS.generation),
    resourceVersion: table.resourceVersion(row),
    deleting: (flags & FLAG_DELETING) !== 0,
    hasFinalizers: (flags & FLAG_HAS_FINALIZERS) !== 0,
  };
}
