// The W3C trace context a request carries across the queue: written from a recording span, read back as its remote parent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { INVALID_SPAN_CONTEXT, trace } from '@opentelemetry/api';
import { contextFromTraceparent, traceparentOf } from './tracing.ts';

const recording = (traceId: string, spanId: string, traceFlags: number) =>
  trace.wrapSpanContext({ traceId, spanId, traceFlags }) as ReturnType<typeof trace.wrapSpanContext>;

describe('Function: traceparentOf / contextFromTraceparent', () => {
  it('carries trace id, span id and the sampled flag, and nothing for a span that does not record', () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const spanId = '00f067aa0ba902b7';
    const span = Object.assign(recording(traceId, spanId, 1), { isRecording: () => true });
    const header = traceparentOf(span);
    assert.equal(header, `00-${traceId}-${spanId}-01`);
    assert.deepEqual(trace.getSpanContext(contextFromTraceparent(header)), { traceId, spanId, traceFlags: 1, isRemote: true });
    assert.equal(traceparentOf(trace.wrapSpanContext(INVALID_SPAN_CONTEXT)), undefined, 'tracing off: no trace in the job');
  });

  for (const bad of [
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7',
  ]) {
    it(`ignores a malformed traceparent (${JSON.stringify(bad)})`, () => {
      assert.equal(trace.getSpanContext(contextFromTraceparent(bad)), undefined);
    });
  }
});
