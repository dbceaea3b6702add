import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));
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
});
