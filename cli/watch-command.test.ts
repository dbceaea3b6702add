import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, 'watch', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });

describe('CLI: conveyor watch', () => {
  it('exits 2 when no controller module is given', () => {
    const result = run([]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--controller <module> is required/);
  });

  it('exits 2 on a shard whose index is not below its count', () => {
    const result = run(['--controller', 'x.ts', '--shard', '3/3']);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /index 3 must be below count 3/);
  });

  it('exits 2 on --shard ordinal/n when the host name carries no StatefulSet ordinal', () => {
    const result = run(['--controller', 'x.ts', '--shard', 'ordinal/3'], { HOSTNAME: 'laptop' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /host name "laptop" does not end in a StatefulSet ordinal/);
  });

  it('exits 2 on a port that is not a port number', () => {
    const result = run(['--controller', 'x.ts', '--port', 'eighty']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--port must be a port number from 0 to 65535, got "eighty"/);
  });
});
