// Conformance: events.k8s.io/v1 Events as a recorder writes them — created once, a series counted by merge patch, the strict rules of the new API.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventsV1Api, type EventsV1Event } from '@kubernetes/client-node';
import { expectStatus, merge, openTarget, type Target } from './target.ts';

type Cause = { field?: string };
const causesOf = (status: { details?: { causes?: Cause[] } }): Cause[] => status.details?.causes ?? [];

describe('Kubernetes API conformance: events.k8s.io/v1 Events', () => {
  let target: Target;
  let events: EventsV1Api;
  before(async () => {
    target = await openTarget();
    events = target.kc.makeApiClient(EventsV1Api);
  });
  after(async () => {
    await target.close();
  });

  const event = (name: string, extra: Partial<EventsV1Event> = {}): EventsV1Event => ({
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name, namespace: target.namespace },
    eventTime: new Date(),
    reportingController: 'conveyor.dev/conformance',
    reportingInstance: 'test-1',
    action: 'Reconcile',
    reason: 'Failed',
    type: 'Warning',
    note: 'the external record could not be written',
    regarding: { apiVersion: 'v1', kind: 'ConfigMap', name: 'subject', namespace: target.namespace, uid: 'a-uid' },
    ...extra,
  });

  it('creates an Event and counts its series with a merge patch; the other fields cannot change', async () => {
    const created = await events.createNamespacedEvent({ namespace: target.namespace, body: event('subject.counted') });
    assert.equal(created.series, undefined);
    const lastObservedTime = new Date().toISOString();
    const body = { series: { count: 10, lastObservedTime } };
    const patched = await events.patchNamespacedEvent({ namespace: target.namespace, name: 'subject.counted', body }, merge());
    assert.equal(patched.series?.count, 10);
    assert.equal(patched.note, 'the external record could not be written');
    const changedNote = events.patchNamespacedEvent(
      { namespace: target.namespace, name: 'subject.counted', body: { note: 'another message' } },
      merge(),
    );
    const status = await expectStatus(changedNote, 422, 'Invalid');
    assert.ok(
      causesOf(status).some((c) => c.field === 'message'),
      `the note is immutable: ${JSON.stringify(status)}`,
    );
  });

  it('refuses an Event without reportingController, action or eventTime, with a bad type, or with a series count below 2', async () => {
    // client-node's model requires eventTime; sent without it as any client may.
    const { eventTime: _omitted, ...withoutTime } = event('subject.bad');
    const body = { ...withoutTime, reportingController: '', action: '', type: 'Loud', series: { count: 1, lastObservedTime: new Date() } };
    const status = await expectStatus(
      events.createNamespacedEvent({ namespace: target.namespace, body: body as EventsV1Event }),
      422,
      'Invalid',
    );
    const fields = causesOf(status)
      .map((c) => c.field)
      .sort();
    for (const field of ['action', 'eventTime', 'reportingController', 'series.count', 'type']) {
      assert.ok(fields.includes(field), `${field} is named: ${JSON.stringify(fields)}`);
    }
  });

  it('refuses a note over 1024 bytes, counting bytes rather than characters', async () => {
    const body = event('subject.long', { note: 'é'.repeat(513) });
    const status = await expectStatus(events.createNamespacedEvent({ namespace: target.namespace, body }), 422, 'Invalid');
    assert.ok(causesOf(status).some((c) => c.field === 'message'));
  });

  it('refuses an Event about an object in another namespace', async () => {
    const body = event('subject.elsewhere', {
      regarding: { apiVersion: 'v1', kind: 'ConfigMap', name: 'subject', namespace: 'kube-system', uid: 'a-uid' },
    });
    const status = await expectStatus(events.createNamespacedEvent({ namespace: target.namespace, body }), 422, 'Invalid');
    assert.ok(causesOf(status).some((c) => c.field === 'involvedObject.namespace'));
  });
});
