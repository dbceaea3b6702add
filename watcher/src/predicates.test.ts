import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ObjectMeta, PredicateSpec } from '@conveyor/shared';
import { ObjectTable } from './object-table.ts';
import {
  type CompiledPredicates,
  compilePredicates,
  decide,
  digestMeta,
  type EventType,
  REQUESTED_AT_ANNOTATION,
  storeDigest,
} from './predicates.ts';

const base: ObjectMeta = {
  name: 'w-1',
  namespace: 'default',
  uid: 'uid-1',
  resourceVersion: '10',
  generation: 1,
  labels: { tier: 'gold' },
  annotations: { note: 'a' },
  finalizers: ['example.com/cleanup'],
};

/** Feeds `before` then `after` through the predicates and returns the decision on `after`. */
function decision(specs: PredicateSpec[] | undefined, before: ObjectMeta | undefined, after: ObjectMeta, type: EventType = 'MODIFIED') {
  const predicates: CompiledPredicates = compilePredicates(specs);
  const table = new ObjectTable({ extraColumns: predicates.projections.length });
  let row: number | undefined;
  if (before !== undefined) {
    row = table.upsert('default/w-1').row;
    storeDigest(table, row, digestMeta(before, predicates), predicates);
  }
  return decide(table, row, digestMeta(after, predicates), type, predicates, after);
}

const next = (changes: Partial<ObjectMeta>): ObjectMeta => ({ ...base, resourceVersion: '11', ...changes });

describe('Predicates', () => {
  const table: [string, PredicateSpec[] | undefined, Partial<ObjectMeta>, boolean, string][] = [
    ['a status-only change (new resourceVersion, same generation)', undefined, {}, false, 'filtered'],
    ['a spec change (generation moved)', undefined, { generation: 2 }, true, 'generation'],
    ['a label change with only the generation predicate', ['generation'], { labels: { tier: 'silver' } }, false, 'filtered'],
    ['a label change with the labels predicate', ['generation', 'labels'], { labels: { tier: 'silver' } }, true, 'labels'],
    ['an annotation change with the annotations predicate', ['annotations'], { annotations: { note: 'b' } }, true, 'annotations'],
    ['an annotation change without it', ['generation', 'labels'], { annotations: { note: 'b' } }, false, 'filtered'],
    ['any change with the resourceVersion predicate', ['resourceVersion'], {}, true, 'resourceVersion'],
    ['deletionTimestamp set, whatever the predicates', ['labels'], { deletionTimestamp: '2026-01-01T00:00:00Z' }, true, 'deletion'],
    ['a finalizer removed, whatever the predicates', ['labels'], { finalizers: [] }, true, 'finalizers'],
    [
      'the manual annotation set, whatever the predicates',
      ['labels'],
      { annotations: { note: 'a', [REQUESTED_AT_ANNOTATION]: 't1' } },
      true,
      'requested',
    ],
    ['the same resourceVersion again (a replay)', ['resourceVersion'], { resourceVersion: '10', generation: 5 }, false, 'unchanged'],
    ['an older resourceVersion (a replay of the past)', ['resourceVersion'], { resourceVersion: '9', generation: 5 }, false, 'stale'],
    ['a new uid under the same name', undefined, { uid: 'uid-2' }, true, 'recreated'],
  ];
  for (const [what, specs, changes, passes, reason] of table) {
    it(`${passes ? 'passes' : 'drops'} ${what} with reason ${reason}`, () => {
      assert.deepEqual(decision(specs, base, next(changes)), { pass: passes, reason });
    });
  }

  it('passes a new object and a deletion', () => {
    assert.deepEqual(decision(undefined, undefined, base, 'ADDED'), { pass: true, reason: 'created' });
    assert.deepEqual(decision(undefined, base, next({}), 'DELETED'), { pass: true, reason: 'deleted' });
  });

  it('passes the manual annotation each time its value changes, not when it stays', () => {
    const once = next({ annotations: { note: 'a', [REQUESTED_AT_ANNOTATION]: 't1' } });
    assert.equal(decision(undefined, once, { ...once, resourceVersion: '12' }).pass, false);
    assert.equal(
      decision(undefined, once, { ...once, resourceVersion: '12', annotations: { note: 'a', [REQUESTED_AT_ANNOTATION]: 't2' } }).pass,
      true,
    );
  });

  it("passes Flux's annotation (reconcile.fluxcd.io/requestedAt) each time its value changes, as Conveyor's own", () => {
    const flux = 'reconcile.fluxcd.io/requestedAt';
    const once = next({ annotations: { note: 'a', [flux]: '2026-11-30T10:00:00.000000001Z' } });
    assert.deepEqual(decision(['generation'], base, once), { pass: true, reason: 'requested' });
    assert.equal(decision(['annotations'], once, { ...once, resourceVersion: '12' }).pass, false, 'unchanged value, no reconcile');
    const again = next({ annotations: { note: 'a', [flux]: '2026-11-30T10:05:00Z' } });
    assert.deepEqual(decision(['generation'], once, { ...again, resourceVersion: '12' }), { pass: true, reason: 'requested' });
  });

  it('runs a user projection on the hash of what it returns', () => {
    const specs: PredicateSpec[] = [{ name: 'owner-label', changed: (meta) => meta.labels?.owner }];
    assert.deepEqual(decision(specs, base, next({ labels: { tier: 'x' } })), { pass: false, reason: 'filtered' });
    assert.deepEqual(decision(specs, base, next({ labels: { tier: 'gold', owner: 'me' } })), { pass: true, reason: 'owner-label' });
  });

  it('gives a user test the previous summary and the new metadata', () => {
    const seen: unknown[] = [];
    const specs: PredicateSpec[] = [
      {
        name: 'big-jump',
        test: (previous, meta) => {
          seen.push(previous);
          return { pass: (meta.generation ?? 0) - (previous?.generation ?? 0) > 1, reason: 'jump' };
        },
      },
    ];
    assert.equal(decision(specs, base, next({ labels: {} })).pass, false);
    assert.equal(decision(specs, base, next({ generation: 5 })).pass, true);
    assert.deepEqual(seen[0], { generation: 1, resourceVersion: '10', deleting: false, hasFinalizers: true });
  });

  it('lists every pass reason up front for the metric', () => {
    const compiled = compilePredicates(['generation', 'labels', { name: 'mine', changed: () => 1 }]);
    assert.deepEqual(compiled.passReasons, [
      'created',
      'recreated',
      'deleted',
      'deletion',
      'finalizers',
      'requested',
      'generation',
      'labels',
      'mine',
    ]);
  });
});
