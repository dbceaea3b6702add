import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnConveyor } from '../test/support/conveyor-process.ts';
import { RedisServer } from '../test/support/redis-server.ts';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));
const TWO_CONTROLLERS = fileURLToPath(new URL('../test/fixtures/two-controllers.ts', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });

describe('CLI: conveyor worker', () => {
  it('exits 2 when no controller module is given', () => {
    const result = run('worker');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--controller <module> is required/);
  });

  it('exits 2 on a concurrency that is not a positive integer', () => {
    const result = run('worker', '--controller', 'x.ts', '--concurrency', 'lots');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--concurrency must be a whole number from 1 to 10000, got "lots"/);
  });

  it('exits 2 naming a controller module that does not exist', () => {
    const result = run('worker', '--controller', 'nowhere/controller.ts');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /controller: file nowhere\/controller\.ts does not exist \[from command line\]/);
  });

  it('exits 2 listing what is wrong with a module’s controller definition', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-worker-cli-'));
    const file = join(dir, 'bad-controller.ts');
    writeFileSync(
      file,
      "export default { name: 'Bad Name', for: { group: 'example.com', version: 'v1', plural: 'widgets' }, finalizer: 'example.com/x' };\n",
    );
    const result = run('worker', '--controller', file);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /name: must be lowercase/);
    assert.match(result.stderr, /reconcile: must be a function/);
    assert.match(result.stderr, /finalize: missing, but finalizer is set/);
  });

  it('exits 2 naming the file, line and column of a syntax error in the controller module', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-worker-cli-'));
    const file = join(dir, 'typo.ts');
    writeFileSync(file, "export default {\n  name: 'widgets',\n  reconcile() { const size = ; },\n};\n");
    const result = run('worker', '--controller', file);
    assert.equal(result.status, 2);
    assert.match(
      result.stderr,
      new RegExp(`controller module .*typo\\.ts failed to load: syntax error at ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: `),
    );
  });

  it('exits 2 when two modules give controllers one name, or one of several modules is missing', () => {
    const twice = run('worker', '--controller', TWO_CONTROLLERS, '--controller', TWO_CONTROLLERS);
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /two controllers are named "widgets"/);
    const missing = run('worker', '--controller', TWO_CONTROLLERS, '--controller', 'nowhere/controller.ts');
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /controller\.1: file nowhere\/controller\.ts does not exist/);
  });

  it('serves every controller of a module in one process, each with its share of --concurrency, and stops on SIGTERM', async () => {
    const redis = await RedisServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-worker-cli-'));
    const config = join(dir, 'conveyor.json');
    writeFileSync(
      config,
      JSON.stringify({
        redis: { url: redis.url },
        kube: { server: 'http://127.0.0.1:9', token: 'unused' },
        http: { host: '127.0.0.1', port: 0 },
      }),
    );
    const worker = spawnConveyor(['worker', '--controller', TWO_CONTROLLERS, '--config', config, '--concurrency', '6']);
    try {
      const [, url] = await worker.waitForOutput(/serving \/healthz \/readyz \/metrics on (http:\/\/[^"\s]+)/, 30_000);
      await worker.waitForOutput(/serving every controller/, 30_000);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /^controller_runtime_max_concurrent_reconciles\{controller="widgets"\} 3$/m);
      assert.match(metrics, /^controller_runtime_max_concurrent_reconciles\{controller="gadgets"\} 3$/m);
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
      const exit = await worker.stop('SIGTERM');
      assert.equal(exit.code, 0, worker.output());
    } finally {
      worker.kill();
      await redis.close();
    }
  });
});
