// The bundles of `conveyor build` for a module exporting two controllers: the runtime serves both, and so does the Lambda handler.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleLambda, bundleRuntime } from './bundle.ts';

const TWO_CONTROLLERS = fileURLToPath(new URL('../../test/fixtures/two-controllers.ts', import.meta.url));

describe('Function: bundleRuntime and bundleLambda of a module exporting two controllers', () => {
  it('builds a runtime with both built in and a handler that serves both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-bundle-'));
    await bundleRuntime([TWO_CONTROLLERS], join(dir, 'bundle.mjs'), 'tested');
    await bundleLambda([TWO_CONTROLLERS], join(dir, 'handler.mjs'));

    const refused = spawnSync(process.execPath, [join(dir, 'bundle.mjs'), 'worker', '--controller', 'x.ts'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /this bundle has the controllers "widgets", "gadgets" built in; --controller is not accepted/);

    const { handler } = (await import(pathToFileURL(join(dir, 'handler.mjs')).href)) as {
      handler: ((event: unknown) => Promise<unknown>) & { close(): Promise<void> };
    };
    try {
      const request = { v: 1, controller: 'gizmos', key: 'example.com/v1/gadgets/default/g-1', reason: 'event', enqueuedAt: 1, attempt: 1 };
      assert.deepEqual(await handler(request), {
        kind: 'terminal',
        code: 'PAYLOAD_INVALID',
        message: 'controller: "gizmos" is not served here (widgets, gadgets)',
      });
    } finally {
      await handler.close();
    }
  });
});
