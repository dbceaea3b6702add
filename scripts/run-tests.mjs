#!/usr/bin/env node
// Runs every *.test.ts in the workspaces with Node's test runner. Arguments narrow the run to paths containing them.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const roots = ['shared', 'watcher', 'workers', 'test', 'cli', 'examples'];
const filters = process.argv.slice(2);
const files = roots
  .flatMap((root) => globSync(`${root}/**/*.test.ts`, { exclude: (p) => p.includes('node_modules') }))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  // --test-force-exit: a test file that leaks a handle (a socket, a timer) must not hang the run.
  ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', '--test-force-exit', ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
