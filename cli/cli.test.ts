import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });

describe('CLI: conveyor', () => {
  it('lists every subcommand in --help', () => {
    const result = run('--help');
    assert.equal(result.status, 0);
    for (const name of ['sim', 'watch', 'worker', 'dispatch', 'enqueue', 'status', 'demo', 'bench']) {
      assert.match(result.stdout, new RegExp(`^  ${name} `, 'm'));
    }
  });

  it('prints the package version', () => {
    const result = run('--version');
    assert.equal(result.status, 0);
    assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('exits 2 with usage on an unknown subcommand', () => {
    const result = run('nosuch');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown command "nosuch"/);
    assert.match(result.stderr, /usage: conveyor <command>/);
  });

  it('exits 2 naming an unknown flag', () => {
    const result = run('config', '--bogus');
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--bogus/);
  });

  it('reports all three mistakes of a config file with their paths and exits 2', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'conveyor-cli-')), 'bad.yaml');
    writeFileSync(file, 'queue:\n  backoff:\n    base: 5 minutes\nworker:\n  concurrency: -1\nredis:\n  urll: redis://x\n');
    const result = run('config', '--config', file);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /3 problems/);
    assert.match(result.stderr, /queue\.backoff\.base: duration "5 minutes"/);
    assert.match(result.stderr, /worker\.concurrency: /);
    assert.match(result.stderr, /redis\.urll: unknown setting/);
  });

  it('prints the effective configuration of a good file', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'conveyor-cli-')), 'good.yaml');
    writeFileSync(file, 'worker:\n  concurrency: 3\n');
    const result = run('config', '--config', file, '--json');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).worker.concurrency, 3);
  });
});
