import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ControllerHandlers, createLogger, defineController, KubeApiError, type KubeObject, type ObjectKey } from '@conveyor/shared';
import { MemoryKubeClient } from '@conveyor/test/fakes/memory-kube-client';
import { isPanic, processRequest } from './process-request.ts';

interface Gadget extends KubeObject {
  spec?: { size?: number };
  status?: { observedGeneration?: number; phase?: string };
}

const GADGETS = { group: 'example.com', version: 'v1', plural: 'gadgets' };
const FINALIZER = 'example.com/gadget-cleanup';
const logger = createLogger({ level: 'silent' });

function gadgetKey(name: string): ObjectKey {
  return { ...GADGETS, namespace: 'default', name };
}

function gadgets(
  handlers: Partial<ControllerHandlers<Gadget, undefined>> & Pick<ControllerHandlers<Gadget, undefined>, 'reconcile'>,
  finalizer = true,
) {
  return defineController<Gadget>({
    name: 'gadgets',
    for: { group: 'example.com', version: 'v1', plural: 'gadgets' },
    ...(finalizer ? { finalizer: FINALIZER, finalize: handlers.finalize ?? (() => {}) } : {}),
    reconcile: handlers.reconcile,
  });
}

function run(controller: ReturnType<typeof gadgets>, client: MemoryKubeClient, name = 'g-1', timeouts = 1_000) {
  return processRequest(
    controller,
    { key: gadgetKey(name), reason: 'event', attempt: 1 },
    {
      client,
      logger,
      deps: undefined,
      reconcileTimeoutMs: timeouts,
      finalizeTimeoutMs: timeouts,
    },
  );
}

function seedGadget(client: MemoryKubeClient, name = 'g-1', finalizers?: string[]) {
  return client.seed<Gadget>(GADGETS, {
    apiVersion: 'example.com/v1',
    kind: 'Gadget',
    metadata: { name, namespace: 'default', ...(finalizers === undefined ? {} : { finalizers }) },
    spec: { size: 3 },
  });
}

const observe = gadgets({
  reconcile(gadget, ctx) {
    ctx.patchStatus({ observedGeneration: gadget.metadata.generation ?? 0, phase: 'Ready' });
    return undefined;
  },
});

describe('Function: processRequest', () => {
  it('adds our finalizer before reconcile runs, and reconcile sees the object with it', async () => {
    const client = new MemoryKubeClient();
    seedGadget(client);
    let seen: string[] | undefined;
    const outcome = await run(
      gadgets({
        reconcile(gadget, ctx) {
          seen = gadget.metadata.finalizers;
          return ctx.requeueAfter('30s');
        },
      }),
      client,
    );
    assert.deepEqual(outcome, { kind: 'requeueAfter', delayMs: 30_000 });
    assert.deepEqual(seen, [FINALIZER]);
    assert.deepEqual(client.peek(gadgetKey('g-1'))?.metadata.finalizers, [FINALIZER]);
  });

  it('writes a status change exactly once, and nothing when a later reconcile changes nothing', async () => {
    const client = new MemoryKubeClient();
    seedGadget(client, 'g-1', [FINALIZER]);
    assert.deepEqual(await run(observe, client), { kind: 'done' });
    assert.deepEqual(client.writes(), [{ verb: 'apply', key: 'example.com/v1/gadgets/default/g-1', subresource: 'status' }]);
    assert.deepEqual(client.peek<Gadget>(gadgetKey('g-1'))?.status, { observedGeneration: 1, phase: 'Ready' });

    client.calls.length = 0;
    assert.deepEqual(await run(observe, client), { kind: 'done' });
    assert.deepEqual(client.writes(), []);
    assert.equal(client.calls.length, 1, 'a no-op reconcile costs one GET');
  });

  it('writes status by a merge patch carrying the resourceVersion read when the controller asks for merge-patch', async () => {
    const client = new MemoryKubeClient();
    seedGadget(client, 'g-1', [FINALIZER]);
    const patching = defineController<Gadget>({ ...observe, statusWrite: 'merge-patch' });
    assert.deepEqual(await run(patching, client), { kind: 'done' });
    assert.deepEqual(client.writes(), [{ verb: 'patch', key: 'example.com/v1/gadgets/default/g-1', subresource: 'status' }]);
    assert.deepEqual(client.peek<Gadget>(gadgetKey('g-1'))?.status, { observedGeneration: 1, phase: 'Ready' });
  });

  it('merges several patchStatus calls into one write', async () => {
    const client = new MemoryKubeClient();
    seedGadget(client, 'g-1', [FINALIZER]);
    await run(
      gadgets({
        reconcile(_gadget, ctx) {
          ctx.patchStatus({ phase: 'Pending' });
          ctx.patchStatus({ observedGeneration: 1 });
          ctx.patchStatus({ phase: 'Ready' });
          return undefined;
        },
      }),
      client,
    );
    assert.equal(client.writes().length, 1);
    assert.deepEqual(client.peek<Gadget>(gadgetKey('g-1'))?.status, { observedGeneration: 1, phase: 'Ready' });
  });

  it('treats a missing object as done without running reconcile', async () => {
    const client = new MemoryKubeClient();
    let ran = false;
    const outcome = await run(
      gadgets({
        reconcile() {
          ran = true;
          return undefined;
        },
      }),
      client,
    );
    assert.deepEqual(outcome, { kind: 'done' });
    assert.equal(ran, false);
  });

  describe('when the object is being deleted', () => {
    it('runs finalize, then removes only our finalizer and leaves another controller’s', async () => {
      const client = new MemoryKubeClient();
      seedGadget(client, 'g-1', ['other.io/keep', FINALIZER, 'third.io/keep']);
      await client.delete(gadgetKey('g-1'));
      let finalized = 0;
      const outcome = await run(
        gadgets({
          reconcile: () => assert.fail('reconcile must not run on a deleting object with our finalizer'),
          finalize: () => {
            finalized += 1;
          },
        }),
        client,
      );
      assert.deepEqual(outcome, { kind: 'done' });
      assert.equal(finalized, 1);
      assert.deepEqual(client.peek(gadgetKey('g-1'))?.metadata.finalizers, ['other.io/keep', 'third.io/keep']);
    });

    it('keeps the finalizer while finalize fails, and removes it (object gone) once it succeeds', async () => {
      const client = new MemoryKubeClient();
      seedGadget(client, 'g-1', [FINALIZER]);
      await client.delete(gadgetKey('g-1'));
      let calls = 0;
      const flaky = gadgets({
        reconcile: () => undefined,
        finalize: () => {
          calls += 1;
          if (calls <= 2) throw new Error(`external system down (${calls})`);
        },
      });
      for (const attempt of [1, 2]) {
        const outcome = await run(flaky, client);
        assert.equal(outcome.kind, 'error', `attempt ${attempt}`);
        assert.deepEqual(client.peek(gadgetKey('g-1'))?.metadata.finalizers, [FINALIZER]);
      }
      assert.deepEqual(await run(flaky, client), { kind: 'done' });
      assert.equal(client.peek(gadgetKey('g-1')), undefined);
    });

    it('parks a finalize that returns an outcome other than done or requeueAfter, naming it, and keeps the finalizer', async () => {
      const client = new MemoryKubeClient();
      seedGadget(client, 'g-1', [FINALIZER]);
      await client.delete(gadgetKey('g-1'));
      const odd = gadgets({
        reconcile: () => undefined,
        finalize: () => ({ kind: 'terminal', code: 'X', message: 'not for finalize to return' }),
      });
      const outcome = await run(odd, client);
      assert.equal(outcome.kind, 'terminal');
      assert.match(outcome.kind === 'terminal' ? outcome.message : '', /finalize returned .* \(an outcome of kind terminal\)/);
      assert.deepEqual(client.peek(gadgetKey('g-1'))?.metadata.finalizers, [FINALIZER]);
    });

    it('does nothing when our finalizer is already gone', async () => {
      const client = new MemoryKubeClient();
      seedGadget(client, 'g-1', ['other.io/keep']);
      await client.delete(gadgetKey('g-1'));
      client.calls.length = 0;
      const outcome = await run(
        gadgets({ reconcile: () => assert.fail('no reconcile'), finalize: () => assert.fail('no finalize') }),
        client,
      );
      assert.deepEqual(outcome, { kind: 'done' });
      assert.deepEqual(client.writes(), []);
    });
  });

  describe('when the controller has an errorPolicy', () => {
    const failing = (errorPolicy: ControllerHandlers<Gadget, undefined>['errorPolicy']) =>
      defineController<Gadget>({
        name: 'gadgets',
        for: GADGETS,
        reconcile: () => {
          throw new Error('backend busy');
        },
        ...(errorPolicy === undefined ? {} : { errorPolicy }),
      });
    const cases: [string, ControllerHandlers<Gadget, undefined>['errorPolicy'], number | undefined][] = [
      ['a duration', () => '2m', 120_000],
      ['milliseconds', () => 1_500, 1_500],
      ['nothing (the default backoff)', () => undefined, undefined],
      [
        'a throw (the default backoff)',
        () => {
          throw new Error('policy bug');
        },
        undefined,
      ],
      ['nonsense (the default backoff)', () => 'soon', undefined],
    ];
    for (const [what, policy, delayMs] of cases) {
      it(`puts the delay of ${what} into the error outcome`, async () => {
        const client = new MemoryKubeClient();
        seedGadget(client);
        const outcome = await run(failing(policy), client);
        assert.equal(outcome.kind, 'error');
        assert.equal(outcome.kind === 'error' ? outcome.delayMs : 'not an error', delayMs);
      });
    }
  });

  describe('when user code misbehaves', () => {
    const cases: [string, ControllerHandlers<Gadget, undefined>['reconcile'], string][] = [
      [
        'throws a string',
        () => {
          throw 'boom';
        },
        'THROWN',
      ],
      [
        'rejects with an Error',
        async () => {
          throw new RangeError('bad size');
        },
        'RangeError',
      ],
      ['never settles', () => new Promise(() => {}), 'TIMEOUT'],
    ];
    for (const [what, reconcile, code] of cases) {
      it(`turns a reconcile that ${what} into an error outcome (${code})`, async () => {
        const client = new MemoryKubeClient();
        seedGadget(client, 'g-1', [FINALIZER]);
        const outcome = await run(gadgets({ reconcile }), client, 'g-1', 100);
        assert.equal(outcome.kind, 'error');
        assert.equal(outcome.kind === 'error' && outcome.code, code);
      });
    }

    it('parks a TerminalError and a nonsense return value', async () => {
      const client = new MemoryKubeClient();
      seedGadget(client, 'g-1', [FINALIZER]);
      const terminal = await run(
        gadgets({
          reconcile: (_gadget, ctx) => {
            throw new ctx.TerminalError('spec.size must be even');
          },
        }),
        client,
      );
      assert.deepEqual(terminal, { kind: 'terminal', code: 'TERMINAL', message: 'spec.size must be even' });
      const nonsense = await run(gadgets({ reconcile: () => ({ kind: 'later' }) as never }), client);
      assert.equal(nonsense.kind, 'terminal');
    });

    it('writes the status collected before reconcile threw, then reports the error', async () => {
      const client = new MemoryKubeClient();
      seedGadget(client, 'g-1', [FINALIZER]);
      const outcome = await run(
        gadgets({
          reconcile(_g, ctx) {
            ctx.patchStatus({ phase: 'Failed' });
            throw new Error('quota exceeded');
          },
        }),
        client,
      );
      assert.equal(outcome.kind, 'error');
      assert.equal(client.peek<Gadget>(gadgetKey('g-1'))?.status?.phase, 'Failed');
    });
  });

  it('fails a stale run with a conflict and writes nothing it read', async () => {
    const client = new MemoryKubeClient();
    seedGadget(client, 'g-1', [FINALIZER]);
    const outcome = await run(
      gadgets({
        async reconcile(gadget, ctx) {
          // A newer run (after our lock expired) wrote in the meantime.
          await client.patch(gadgetKey('g-1'), { type: 'merge', body: { status: { phase: 'Newer' } } }, { subresource: 'status' });
          ctx.patchStatus({ phase: `Stale-${gadget.metadata.resourceVersion}` });
          return undefined;
        },
      }),
      client,
    );
    assert.equal(outcome.kind, 'error');
    assert.equal(outcome.kind === 'error' && outcome.code, 'CONFLICT');
    assert.equal(client.peek<Gadget>(gadgetKey('g-1'))?.status?.phase, 'Newer');
  });

  it('turns a 429 into a throttled outcome carrying Retry-After', async () => {
    const client = new MemoryKubeClient();
    seedGadget(client, 'g-1', [FINALIZER]);
    client.beforeCall = () => {
      throw new KubeApiError({ statusCode: 429, message: 'GET: 429', retryAfterMs: 3_000 });
    };
    assert.deepEqual(await run(observe, client), { kind: 'throttled', retryAfterMs: 3_000, message: 'GET: 429' });
  });

  it('parks a request for another resource instead of reconciling it', async () => {
    const client = new MemoryKubeClient();
    const outcome = await processRequest(
      observe,
      { key: { ...gadgetKey('x'), plural: 'widgets' }, reason: 'event', attempt: 1 },
      {
        client,
        logger,
        deps: undefined,
        reconcileTimeoutMs: 1_000,
        finalizeTimeoutMs: 1_000,
      },
    );
    assert.equal(outcome.kind, 'terminal');
    assert.deepEqual(client.calls, []);
  });
});

describe('Function: isPanic (controller-runtime’s panics counter)', () => {
  const cases: [string, unknown, boolean][] = [
    ['a TypeError from a bug', new TypeError("Cannot read properties of undefined (reading 'spec')"), true],
    ['a ReferenceError', new ReferenceError('widget is not defined'), true],
    ['a thrown string', 'boom', true],
    ['undici’s failed fetch (a TypeError with a cause)', new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') }), false],
    ['an Error the reconcile threw on purpose', new Error('the external API is down'), false],
    ['an API error', new KubeApiError({ statusCode: 500, reason: 'InternalError', message: 'etcd timeout' }), false],
  ];
  for (const [what, error, expected] of cases) {
    it(`${expected ? 'counts' : 'does not count'} ${what}`, () => assert.equal(isPanic(error), expected));
  }

  it('tells onPanic when a reconcile crashes, and the outcome is still a retried error', async () => {
    const client = new MemoryKubeClient();
    await client.create(GADGETS, { apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g', namespace: 'default' } });
    let panics = 0;
    const outcome = await processRequest(
      gadgets(
        {
          reconcile: (gadget) => {
            (gadget.spec as unknown as { size: { value: number } }).size.value += 1;
          },
        },
        false,
      ),
      { key: gadgetKey('g'), reason: 'event', attempt: 1 },
      { client, logger, deps: undefined, reconcileTimeoutMs: 1_000, finalizeTimeoutMs: 1_000, onPanic: () => (panics += 1) },
    );
    assert.equal(outcome.kind, 'error');
    assert.equal(panics, 1);
  });
});
