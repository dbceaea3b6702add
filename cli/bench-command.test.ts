// Tests of `conveyor bench`'s options: how many runs by default and with --runs, what it refuses, and what --help says — without running a benchmark.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RUNS } from '../test/bench/bench-support.ts';
import { parseBenchArgs } from './bench-command.ts';
import { UsageError } from './command.ts';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));

describe('Function: parseBenchArgs', () => {
  const runs: [string[], number][] = [
    [[], 3],
    [['--size', 'default'], 3],
    [['--size', 'large'], 3],
    [['--size', 'tiny'], 1],
    [['--runs', '5'], 5],
    [['--size', 'tiny', '--runs', '2'], 2],
    [['--runs', '1'], 1],
  ];
  for (const [args, expected] of runs) {
    it(`runs every scenario ${expected} time${expected === 1 ? '' : 's'} with ${args.join(' ') || 'no options'}`, () => {
      assert.equal(parseBenchArgs(args).runs, expected);
    });
  }

  it('agrees with the benchmarks on the default number of runs for every size', () => {
    for (const size of ['tiny', 'default', 'large'] as const) assert.equal(parseBenchArgs(['--size', size]).runs, DEFAULT_RUNS[size]);
  });

  for (const bad of ['0', '-1', '2.5', 'three', '']) {
    it(`refuses --runs "${bad}" with a usage error naming the option`, () => {
      assert.throws(
        () => parseBenchArgs(['--runs', bad]),
        (error: unknown) => error instanceof UsageError && error.message.includes('--runs'),
      );
    });
  }

  it('writes docs/BENCHMARKS.md unless told otherwise, runs the Lambda path except at tiny size', () => {
    const plain = parseBenchArgs([]);
    assert.equal(plain.out, resolve('docs/BENCHMARKS.md'));
    assert.equal(plain.lambda, true);
    assert.equal(parseBenchArgs(['--no-write']).out, undefined);
    assert.equal(parseBenchArgs(['--size', 'tiny']).lambda, false);
    assert.deepEqual(parseBenchArgs(['--only', 'b1,B3']).only, ['B1', 'B3']);
  });

  it('refuses contradicting options', () => {
    assert.throws(() => parseBenchArgs(['--out', 'x.md', '--no-write']), UsageError);
    assert.throws(() => parseBenchArgs(['--lambda', '--no-lambda']), UsageError);
    assert.throws(() => parseBenchArgs(['--size', 'huge']), UsageError);
  });
});

describe('CLI: conveyor bench --help', () => {
  it('lists --runs with its defaults, one run at tiny size', () => {
    const result = spawnSync(process.execPath, [bin, 'bench', '--help'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^usage: conveyor bench .*\[--runs <n>\]/m);
    assert.match(result.stdout, /^ +--runs <n> .*median.*default: 3 \(1 for --size tiny\)/m);
  });

  it('exits 2 with the usage on a bad --runs, before running anything', () => {
    const result = spawnSync(process.execPath, [bin, 'bench', '--runs', '0', '--no-write'], { encoding: 'utf8' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--runs takes a whole number of at least 1, got "0"/);
    assert.match(result.stderr, /usage: conveyor bench/);
  });
});
